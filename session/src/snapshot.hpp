// Private: a row of column values packed into one immutable, reference-counted piece of a
// session's arena. The session keeps one per tracked object (the database's view of it) for
// dirty checks, identity and rollback; packed, it costs a bump of a pointer instead of a vector
// plus one allocation per string, and a handle is one pointer. Not thread-safe (a Session
// belongs to one thread). The arena must outlive its snapshots.
#pragma once

#include <athanor/core/detail/hot.hpp>
#include <athanor/core/exc.hpp>
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

    /// `n` bytes, 2-aligned, counted as one live allocation of their block (block_of()).
    std::byte* allocate(std::size_t n) {
        std::byte* p = room(n);
        commit(n);
        return p;
    }

    /// Room for up to `n` bytes at the end of the current block (a new block when it has less),
    /// not handed out yet: commit() hands out what was written. For a row written in one pass
    /// into an upper bound of its size.
    std::byte* room(std::size_t n) {
        if (!cur_ || cur_->used + ((n + 1) & ~std::size_t{1}) > cur_->cap) [[unlikely]]
            next_block(n);
        return reinterpret_cast<std::byte*>(cur_ + 1) + cur_->used;
    }
    /// Hands out the first `n` bytes of the last room() (n at most what was asked for there) as
    /// one live allocation.
    void commit(std::size_t n) noexcept {
        n = (n + 1) & ~std::size_t{1};  // snapshots are read with memcpy: 2-byte steps suffice
        cur_->used += n;
        ++cur_->live;
        ++live_;
        ++total_allocs_;
        total_bytes_ += n;
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
    // Retires the current block for one with room for n bytes (a spare one when it will do).
    [[gnu::noinline]] void next_block(std::size_t n) {
        n = (n + 1) & ~std::size_t{1};
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

/// Views of a row of Values, valid while the values are: no heap buffer up to 32 of them.
class RowViews {
public:
    explicit RowViews(std::span<const Value> values) : n_(values.size()) {
        if (n_ > kInline) {
            many_.resize(n_);
            p_ = many_.data();
        }
        for (std::size_t i = 0; i < n_; ++i) p_[i] = ValueView::of(values[i]);
    }
    RowViews(const RowViews&) = delete;
    RowViews& operator=(const RowViews&) = delete;
    const ValueView* data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }
    std::span<const ValueView> span() const noexcept { return {p_, n_}; }

private:
    static constexpr std::size_t kInline = 32;
    ValueView inline_[kInline];
    std::vector<ValueView> many_;
    ValueView* p_ = inline_;
    std::size_t n_;
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

    /// Packs n values (layout: see the private constants below).
    static Snapshot pack(SnapshotArena& arena, const std::vector<Value>& values) {
        RowViews views(values);
        return pack(arena, views.data(), views.size());
    }

    ATHANOR_HOT static Snapshot pack(SnapshotArena& arena, const ValueView* values, std::size_t n) {
        if (n <= kScan) {
            // No offsets: the values are written in one pass into room for the largest they
            // can take (a varint is at most 10 bytes), and what was written is handed out.
            std::size_t bound = kHeader + 11 * n;
            // Not unrolled: a row's few values never reach the unrolled body, whose code would
            // sit between the lines every row runs.
#pragma GCC unroll 1
            for (std::size_t i = 0; i < n; ++i) {
                const bool bytes = values[i].kind == Value::Kind::text || values[i].kind == Value::Kind::blob;
                bound += bytes ? values[i].bytes.size() : 0;
            }
            std::byte* p = arena.room(bound);
            put32(p + kRefs, 1);
            put16(p + kCount, static_cast<std::uint16_t>(n));
            arena.commit(put_values(p, kHeader, values, n, 0));
            Snapshot s;
            s.p_ = p;
            return s;
        }
        return pack_wide(arena, values, n);
    }

    /// pack() of more than kScan values (offsets), out of line: the usual rows' code stays small.
    [[gnu::noinline]] static Snapshot pack_wide(SnapshotArena& arena, const ValueView* values, std::size_t n) {
        std::size_t body = 0;
        for (std::size_t i = 0; i < n; ++i) {
            body += 1;
            switch (values[i].kind) {
                case Value::Kind::null: break;
                case Value::Kind::integer: body += varint_size(zigzag(values[i].i)); break;
                case Value::Kind::real: body += 8; break;
                case Value::Kind::text:
                case Value::Kind::blob: body += varint_size(values[i].bytes.size()) + values[i].bytes.size(); break;
            }
        }
        if (n > kMaxCount) throw Error("a row of more than 32767 columns cannot be tracked");
        // Up to kScan values are found by walking them (no offsets); more get an offset each,
        // 2 bytes while every value starts below 64 KiB (any usual row), else 4.
        const bool wide = n > kScan && kHeader + 2 * n + body > 0xFFFF;
        const std::size_t width = n <= kScan ? 0 : wide ? 4 : 2;
        const std::size_t size = kHeader + width * n + body;
        std::byte* p = arena.allocate(size);
        put32(p + kRefs, 1);
        put16(p + kCount, static_cast<std::uint16_t>(n | (wide ? kWide : 0)));
        put_values(p, kHeader + width * n, values, n, width);
        Snapshot s;
        s.p_ = p;
        return s;
    }

    explicit operator bool() const noexcept { return p_ != nullptr; }
    std::size_t size() const noexcept { return p_ ? (meta() & ~kWide) : 0; }

    ValueView view(std::size_t i) const noexcept {
        const std::byte* e = entry(i);
        return decode(e);
    }
    /// The values in order, one decode each (view(i) for every i walks the narrow rows again).
    class Reader {
    public:
        ValueView next() noexcept { return decode(e_); }
        /// The kind of the value next() would give.
        Value::Kind kind() const noexcept { return static_cast<Value::Kind>(*e_); }
        /// next().i of an integer (kind() is integer), without the view.
        std::int64_t next_int() noexcept {
            ++e_;
            return unzigzag(get_varint(e_));
        }
        /// next().bytes of text or a blob (kind() is one of them), without the view.
        std::string_view next_bytes() noexcept {
            ++e_;
            auto len = static_cast<std::size_t>(get_varint(e_));
            std::string_view b(reinterpret_cast<const char*>(e_), len);
            e_ += len;
            return b;
        }
    private:
        friend class Snapshot;
        explicit Reader(const std::byte* e) noexcept : e_(e) {}
        const std::byte* e_;
    };
    Reader reader() const noexcept { return Reader(entry(0)); }
    /// Value i if it is an integer, else nullopt (the identity map's common key).
    std::optional<std::int64_t> int_at(std::size_t i) const noexcept {
        const std::byte* e = entry(i);
        if (static_cast<Value::Kind>(*e++) != Value::Kind::integer) return std::nullopt;
        return unzigzag(get_varint(e));
    }
    /// Whether value i is the integer `x` (the identity map's common key compare).
    bool int_equals(std::size_t i, std::int64_t x) const noexcept {
        auto v = int_at(i);
        return v && *v == x;
    }
    Value value(std::size_t i) const { return view(i).to_value(); }
    std::vector<Value> values() const {
        std::vector<Value> out;
        const std::size_t n = size();
        out.reserve(n);
        Reader r = reader();
        for (std::size_t i = 0; i < n; ++i) out.push_back(r.next().to_value());
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
    // Layout: refcount (4), count (2; its top bit: 4-byte offsets), then for more than kScan
    // values one offset each (2 or 4 bytes, from the start), then the values (the block is
    // found from the address). A value: its kind byte, then an integer as a zigzag LEB128
    // varint (an id of 100000 takes 3 bytes, not 8), a real as 8 bytes, text or a blob as a
    // varint length and the bytes. A row of 3 columns (an id and two short strings) takes its
    // bytes plus 12.
    static constexpr std::size_t kRefs = 0;
    static constexpr std::size_t kCount = 4;
    static constexpr std::size_t kHeader = 6;
    static constexpr std::uint16_t kWide = 0x8000u;
    static constexpr std::size_t kMaxCount = 0x7FFF;
    static constexpr std::size_t kScan = 8;
    std::uint16_t meta() const noexcept {
        std::uint16_t m;
        std::memcpy(&m, p_ + kCount, 2);
        return m;
    }
    const std::byte* entry(std::size_t i) const noexcept {
        const std::uint16_t m = meta();
        const std::size_t n = m & ~kWide;
        if (n <= kScan) {  // walk past the values before i
            const std::byte* e = p_ + kHeader;
            for (std::size_t k = 0; k < i; ++k) e = skip(e);
            return e;
        }
        if (m & kWide) return p_ + get32(p_ + kHeader + 4 * i);
        std::uint16_t off;
        std::memcpy(&off, p_ + kHeader + 2 * i, 2);
        return p_ + off;
    }
    /// Writes the values from `pos` on (and, with a width, each one's offset after the
    /// header); returns the end.
    static std::size_t put_values(std::byte* p, std::size_t pos, const ValueView* values, std::size_t n,
                                  std::size_t width) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            const ValueView& v = values[i];
            if (width == 4) put32(p + kHeader + 4 * i, static_cast<std::uint32_t>(pos));
            else if (width == 2) put16(p + kHeader + 2 * i, static_cast<std::uint16_t>(pos));
            p[pos++] = static_cast<std::byte>(v.kind);
            switch (v.kind) {
                case Value::Kind::null: break;
                case Value::Kind::integer: pos = put_varint(p, pos, zigzag(v.i)); break;
                case Value::Kind::real: std::memcpy(p + pos, &v.d, 8); pos += 8; break;
                case Value::Kind::text:
                case Value::Kind::blob:
                    pos = put_varint(p, pos, v.bytes.size());
                    copy_bytes(p + pos, v.bytes.data(), v.bytes.size());
                    pos += v.bytes.size();
                    break;
            }
        }
        return pos;
    }
    /// The value at `e`; moves `e` past it.
    static ValueView decode(const std::byte*& e) noexcept {
        ValueView v;
        v.kind = static_cast<Value::Kind>(*e++);
        switch (v.kind) {
            case Value::Kind::null: break;
            case Value::Kind::integer: v.i = unzigzag(get_varint(e)); break;
            case Value::Kind::real:
                std::memcpy(&v.d, e, 8);
                e += 8;
                break;
            case Value::Kind::text:
            case Value::Kind::blob: {
                auto len = static_cast<std::size_t>(get_varint(e));
                v.bytes = std::string_view(reinterpret_cast<const char*>(e), len);
                e += len;
                break;
            }
        }
        return v;
    }
    /// The value after the one at `e`.
    static const std::byte* skip(const std::byte* e) noexcept {
        decode(e);
        return e;
    }
    static std::uint64_t zigzag(std::int64_t x) noexcept {
        return (static_cast<std::uint64_t>(x) << 1) ^ static_cast<std::uint64_t>(x >> 63);
    }
    static std::int64_t unzigzag(std::uint64_t u) noexcept {
        return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
    }
    static std::size_t varint_size(std::uint64_t x) noexcept {
        std::size_t n = 1;
        while (x >= 0x80) {
            x >>= 7;
            ++n;
        }
        return n;
    }
    static std::size_t put_varint(std::byte* p, std::size_t pos, std::uint64_t x) noexcept {
        while (x >= 0x80) {
            p[pos++] = static_cast<std::byte>((x & 0x7F) | 0x80);
            x >>= 7;
        }
        p[pos++] = static_cast<std::byte>(x);
        return pos;
    }
    /// Reads a varint at `e` and moves `e` past it.
    static std::uint64_t get_varint(const std::byte*& e) noexcept {
        std::uint64_t x = 0;
        for (unsigned shift = 0;; shift += 7) {
            auto b = static_cast<std::uint8_t>(*e++);
            x |= static_cast<std::uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return x;
        }
    }
    // Short strings (names, codes: most columns) are copied in two overlapping moves, not by a
    // call to memcpy.
    static void copy_bytes(std::byte* to, const char* from, std::size_t n) noexcept {
        if (n >= 8 && n <= 16) {
            std::memcpy(to, from, 8);
            std::memcpy(to + n - 8, from + n - 8, 8);
        } else if (n > 16 && n <= 32) {
            std::memcpy(to, from, 16);
            std::memcpy(to + n - 16, from + n - 16, 16);
        } else if (n != 0) {
            std::memcpy(to, from, n);
        }
    }
    static void put32(std::byte* at, std::uint32_t x) noexcept { std::memcpy(at, &x, 4); }
    static void put16(std::byte* at, std::uint16_t x) noexcept { std::memcpy(at, &x, 2); }
    void ref() noexcept {
        if (p_) put_refs(get32(p_ + kRefs) + 1);
    }
    ATHANOR_HOT void unref() noexcept {
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
