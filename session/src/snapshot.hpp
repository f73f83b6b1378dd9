// Private: a row of column values packed into one immutable allocation. The session keeps one
// per tracked object (the database's view of it) for dirty checks, identity and rollback; packed,
// it costs one allocation instead of a vector plus one per string, and shares nothing with the
// buffers it was packed from.
#pragma once

#include <athanor/core/value.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace athanor::detail {

class Snapshot {
public:
    Snapshot() = default;

    /// Layout: uint32 count, uint32 offsets[count], then per value: a kind byte and its payload
    /// (8 bytes for integer/real, uint32 length + bytes for text/blob).
    static Snapshot pack(const std::vector<Value>& values) {
        std::size_t n = values.size();
        std::size_t size = 4 + 4 * n;
        for (const Value& v : values) {
            size += 1;
            switch (v.kind()) {
                case Value::Kind::null: break;
                case Value::Kind::integer:
                case Value::Kind::real: size += 8; break;
                case Value::Kind::text: size += 4 + v.if_text()->size(); break;
                case Value::Kind::blob: size += 4 + v.if_blob()->size(); break;
            }
        }
        auto buf = std::make_shared_for_overwrite<std::byte[]>(size);
        std::byte* p = buf.get();
        auto put32 = [](std::byte* at, std::uint32_t x) { std::memcpy(at, &x, 4); };
        put32(p, static_cast<std::uint32_t>(n));
        std::size_t pos = 4 + 4 * n;
        for (std::size_t i = 0; i < n; ++i) {
            const Value& v = values[i];
            put32(p + 4 + 4 * i, static_cast<std::uint32_t>(pos));
            p[pos++] = static_cast<std::byte>(v.kind());
            switch (v.kind()) {
                case Value::Kind::null: break;
                case Value::Kind::integer: std::memcpy(p + pos, v.if_int(), 8); pos += 8; break;
                case Value::Kind::real: std::memcpy(p + pos, v.if_double(), 8); pos += 8; break;
                case Value::Kind::text: {
                    const std::string& t = *v.if_text();
                    put32(p + pos, static_cast<std::uint32_t>(t.size()));
                    if (!t.empty()) std::memcpy(p + pos + 4, t.data(), t.size());
                    pos += 4 + t.size();
                    break;
                }
                case Value::Kind::blob: {
                    const Blob& b = *v.if_blob();
                    put32(p + pos, static_cast<std::uint32_t>(b.size()));
                    if (!b.empty()) std::memcpy(p + pos + 4, b.data(), b.size());
                    pos += 4 + b.size();
                    break;
                }
            }
        }
        Snapshot s;
        s.buf_ = std::move(buf);
        return s;
    }

    explicit operator bool() const noexcept { return buf_ != nullptr; }
    std::size_t size() const noexcept { return buf_ ? get32(buf_.get()) : 0; }

    ValueView view(std::size_t i) const noexcept {
        const std::byte* p = buf_.get();
        const std::byte* e = p + get32(p + 4 + 4 * i);
        ValueView v;
        v.kind = static_cast<Value::Kind>(*e);
        switch (v.kind) {
            case Value::Kind::null: break;
            case Value::Kind::integer: std::memcpy(&v.i, e + 1, 8); break;
            case Value::Kind::real: std::memcpy(&v.d, e + 1, 8); break;
            case Value::Kind::text:
            case Value::Kind::blob:
                v.bytes = std::string_view(reinterpret_cast<const char*>(e + 5), get32(e + 1));
                break;
        }
        return v;
    }
    Value value(std::size_t i) const { return view(i).to_value(); }
    std::vector<Value> values() const {
        std::vector<Value> out;
        out.reserve(size());
        for (std::size_t i = 0; i < size(); ++i) out.push_back(value(i));
        return out;
    }

    friend bool operator==(const Snapshot& a, const Snapshot& b) noexcept { return a.buf_ == b.buf_; }

private:
    static std::uint32_t get32(const std::byte* p) noexcept {
        std::uint32_t x;
        std::memcpy(&x, p, 4);
        return x;
    }
    std::shared_ptr<const std::byte[]> buf_;
};

}  // namespace athanor::detail
