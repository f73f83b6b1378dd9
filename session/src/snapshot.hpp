// Private: a row of column values packed into one immutable, reference-counted piece of a
// session's arena. The session keeps one per tracked object (the database's view of it) for
// dirty checks, identity and rollback; packed, it costs a bump of a pointer instead of a vector
// plus one allocation per string, and a handle is one pointer. Not thread-safe (a Session
// belongs to one thread). The arena must outlive its snapshots.
#pragma once

#include <athanor/core/value.hpp>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <new>
#include <optional>
#include <memory>
#include <vector>
#include <span>

namespace athanor::detail {

/// Where a session's snapshots live: 64 KiB blocks handed out by a bump pointer (no malloc per
/// object); a block is freed when it is no longer the current one and its last snapshot is gone.
/// Blocks are aligned to their size, so a snapshot finds its block by masking its address (no
/// pointer stored per snapshot); a snapshot larger than a block gets a block of its own, aligned
/// the same way, and starts within its first 64 KiB.
class SnapshotArena {
public:
    static constexpr std::size_t kBlock = 64 * 1024;
    struct Block {
        std::size_t live = 0;
        std::size_t used = 0;
        std::size_t cap = 0;
        bool current = true;
        SnapshotArena* owner = nullptr;
    };

    SnapshotArena() = default;
    SnapshotArena(const SnapshotArena&) = delete;
    SnapshotArena& operator=(const SnapshotArena&) = delete;
    ~SnapshotArena() {
        retire();
        while (spare_count_ > 0) ::operator delete(spares_[--spare_count_], std::align_val_t{kBlock});
    }

    /// `n` bytes, 8-aligned, counted as one live allocation of the returned block.
    std::byte* allocate(std::size_t n, Block*& block) {
        n = (n + 3) & ~std::size_t{3};  // snapshots are read with memcpy: 4-byte steps suffice
        if (!cur_ || cur_->used + n > cur_->cap) {
            retire();
            std::size_t cap = std::max<std::size_t>(kBlock - sizeof(Block), n);
            void* mem;
            if (cap == kBlock - sizeof(Block) && spare_count_ > 0) {  // a freed block kept for this
                mem = spares_[--spare_count_];
            } else {
                mem = ::operator new(sizeof(Block) + cap, std::align_val_t{kBlock});
            }
            cur_ = new (mem) Block{0, 0, cap, true, this};
            bytes_held_ += cap;
        }
        std::byte* p = reinterpret_cast<std::byte*>(cur_ + 1) + cur_->used;
        cur_->used += n;
        ++cur_->live;
        ++live_;
        ++total_allocs_;
        total_bytes_ += n;
        block = cur_;
        return p;
    }

    /// The block holding the snapshot at `p`.
    static Block* block_of(const std::byte* p) noexcept {
        return reinterpret_cast<Block*>(reinterpret_cast<std::uintptr_t>(p) & ~(std::uintptr_t{kBlock} - 1));
    }
    static void release(Block* b) noexcept {
        --b->owner->live_;
        if (--b->live == 0 && !b->current) free_block(b);
    }
    /// What the live snapshots need, estimated from the average size packed so far (O(1)).
    std::size_t estimated_live_bytes() const noexcept {
        return total_allocs_ ? live_ * (total_bytes_ / total_allocs_) : 0;
    }
    /// Bytes of the blocks still allocated (the current one and those a live snapshot pins).
    std::size_t bytes_held() const noexcept { return bytes_held_; }

private:
    void retire() noexcept {
        if (!cur_) return;
        cur_->current = false;
        if (cur_->live == 0) free_block(cur_);
        cur_ = nullptr;
    }
    // Up to kSpares freed blocks are kept for the next ones: a session that loads objects and
    // lets them go again (a loop of get(); its sweep frees a few blocks at once) would
    // otherwise free and allocate 64 KiB blocks all the time, and glibc consolidates its whole
    // heap on each free that large.
    static void free_block(Block* b) noexcept {
        SnapshotArena* a = b->owner;
        a->bytes_held_ -= b->cap;
        if (a->spare_count_ < kSpares && b->cap == kBlock - sizeof(Block)) {
            a->spares_[a->spare_count_++] = b;
            return;
        }
        ::operator delete(b, std::align_val_t{kBlock});
    }
    Block* cur_ = nullptr;
    static constexpr std::size_t kSpares = 8;
    Block* spares_[kSpares] = {};  // freed blocks kept for reuse (not counted in bytes_held_)
    std::size_t spare_count_ = 0;
    std::size_t bytes_held_ = 0;
    std::size_t live_ = 0;           // live snapshots
    std::size_t total_allocs_ = 0;   // ever packed, for the average size
    std::size_t total_bytes_ = 0;
};

class Snapshot {
public:
    Snapshot() = default;

    Snapshot(const Snapshot& o) noexcept : p_(o.p_) { ref(); }
    Snapshot(Snapshot&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    Snapshot& operator=(const Snapshot& o) noexcept {
        if (p_ != o.p_) {
            unref();
            p_ = o.p_;
            ref();
        }
        return *this;
    }
    Snapshot& operator=(Snapshot&& o) noexcept {
        if (this != &o) {
            unref();
            p_ = o.p_;
            o.p_ = nullptr;
        }
        return *this;
    }
    ~Snapshot() { unref(); }

    /// Layout: uint32 refcount, uint32 count, uint32 offsets[count], then per value: a kind byte
    /// and its payload (8 bytes for integer/real, uint32 length + bytes for text/blob).
    static Snapshot pack(SnapshotArena& arena, const std::vector<Value>& values) {
        constexpr std::size_t kInline = 32;  // a row of up to 32 columns packs without a heap buffer
        ValueView inline_views[kInline];
        std::vector<ValueView> many;
        ValueView* views = inline_views;
        if (values.size() > kInline) {
            many.resize(values.size());
            views = many.data();
        }
        for (std::size_t i = 0; i < values.size(); ++i) views[i] = ValueView::of(values[i]);
        return pack(arena, views, values.size());
    }

    static Snapshot pack(SnapshotArena& arena, const ValueView* values, std::size_t n) {
        std::size_t size = kHeader + 4 * n;
        for (std::size_t i = 0; i < n; ++i) {
            size += 1;
            switch (values[i].kind) {
                case Value::Kind::null: break;
                case Value::Kind::integer:
                case Value::Kind::real: size += 8; break;
                case Value::Kind::text:
                case Value::Kind::blob: size += 4 + values[i].bytes.size(); break;
            }
        }
        SnapshotArena::Block* block = nullptr;
        std::byte* p = arena.allocate(size, block);
        auto put32 = [](std::byte* at, std::uint32_t x) { std::memcpy(at, &x, 4); };
        put32(p + kRefs, 1);
        put32(p + kCount, static_cast<std::uint32_t>(n));
        std::size_t pos = kHeader + 4 * n;
        for (std::size_t i = 0; i < n; ++i) {
            const ValueView& v = values[i];
            put32(p + kHeader + 4 * i, static_cast<std::uint32_t>(pos));
            p[pos++] = static_cast<std::byte>(v.kind);
            switch (v.kind) {
                case Value::Kind::null: break;
                case Value::Kind::integer: std::memcpy(p + pos, &v.i, 8); pos += 8; break;
                case Value::Kind::real: std::memcpy(p + pos, &v.d, 8); pos += 8; break;
                case Value::Kind::text:
                case Value::Kind::blob:
                    put32(p + pos, static_cast<std::uint32_t>(v.bytes.size()));
                    if (!v.bytes.empty()) std::memcpy(p + pos + 4, v.bytes.data(), v.bytes.size());
                    pos += 4 + v.bytes.size();
                    break;
            }
        }
        Snapshot s;
        s.p_ = p;
        return s;
    }

    explicit operator bool() const noexcept { return p_ != nullptr; }
    std::size_t size() const noexcept { return p_ ? get32(p_ + kCount) : 0; }

    ValueView view(std::size_t i) const noexcept {
        const std::byte* e = p_ + get32(p_ + kHeader + 4 * i);
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
    /// Value i if it is an integer, else nullopt (the identity map's common key).
    std::optional<std::int64_t> int_at(std::size_t i) const noexcept {
        const std::byte* e = p_ + get32(p_ + kHeader + 4 * i);
        if (static_cast<Value::Kind>(*e) != Value::Kind::integer) return std::nullopt;
        std::int64_t v;
        std::memcpy(&v, e + 1, 8);
        return v;
    }
    /// Whether value i is the integer `x` (the identity map's common key compare).
    bool int_equals(std::size_t i, std::int64_t x) const noexcept {
        const std::byte* e = p_ + get32(p_ + kHeader + 4 * i);
        if (static_cast<Value::Kind>(*e) != Value::Kind::integer) return false;
        std::int64_t v;
        std::memcpy(&v, e + 1, 8);
        return v == x;
    }
    Value value(std::size_t i) const { return view(i).to_value(); }
    std::vector<Value> values() const {
        std::vector<Value> out;
        out.reserve(size());
        for (std::size_t i = 0; i < size(); ++i) out.push_back(value(i));
        return out;
    }

    friend bool operator==(const Snapshot& a, const Snapshot& b) noexcept { return a.p_ == b.p_; }

    /// The same values packed anew in `arena`'s current block (compaction).
    Snapshot repack(SnapshotArena& arena) const {
        std::vector<ValueView> views(size());
        for (std::size_t i = 0; i < views.size(); ++i) views[i] = view(i);
        return pack(arena, views.data(), views.size());
    }

private:
    // Layout: refcount (4), count (4), offsets, values (the block is found from the address).
    static constexpr std::size_t kRefs = 0;
    static constexpr std::size_t kCount = 4;
    static constexpr std::size_t kHeader = 8;
    void ref() noexcept {
        if (p_) put_refs(get32(p_ + kRefs) + 1);
    }
    void unref() noexcept {
        if (!p_) return;
        std::uint32_t r = get32(p_ + kRefs) - 1;
        if (r == 0) {
            SnapshotArena::release(SnapshotArena::block_of(p_));
        } else {
            put_refs(r);
        }
        p_ = nullptr;
    }
    void put_refs(std::uint32_t r) noexcept { std::memcpy(p_ + kRefs, &r, 4); }
    static std::uint32_t get32(const std::byte* p) noexcept {
        std::uint32_t x;
        std::memcpy(&x, p, 4);
        return x;
    }
    std::byte* p_ = nullptr;
};

}  // namespace athanor::detail
