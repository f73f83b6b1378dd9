// Session bookkeeping: tracking objects, the identity map, get/merge/refresh/expire, state
// queries, commit and rollback. The unit of work is in session_flush.cpp.
#include "session_impl.hpp"

#include <athanor/core/exc.hpp>

#include <random>
#include <thread>
#include <algorithm>
#include <functional>
#include <cstdio>
#include <mutex>

namespace athanor {

namespace detail {

std::span<const Value> InstanceState::key_span(std::vector<Value>& scratch) const {
    const auto& pk = mapper->primary_key();
    scratch.clear();
    for (std::size_t i : pk) scratch.push_back(snapshot.value(i));
    return scratch;
}

std::size_t hash_view(const ValueView& v) noexcept {
    switch (v.kind) {
        case Value::Kind::null: return 0x9e3779b9;
        case Value::Kind::integer: return std::hash<std::int64_t>{}(v.i);
        case Value::Kind::real: return std::hash<double>{}(v.d);
        default: return std::hash<std::string_view>{}(v.bytes);
    }
}

namespace {
// A single integer key (the common case: an autoincrement id) hashes to itself with its high
// bits folded in: consecutive ids go to consecutive slots (a load or a run of gets walks the
// table in order instead of missing the cache on every row), and strides of a power of two
// (ids that are multiples of 65536) still spread.
// Erases slot i of a linear-probing table (a power of two long). Followed by an empty slot, no
// probe goes past it, so it becomes empty, and so do the tombstones just before it (a session
// letting go of objects in the order it loaded them leaves none behind and never rehashes for
// them); else it becomes a tombstone. Returns how many slots stopped being used.
template <class S, class IsEmpty, class IsTomb>
std::size_t erase_slot(std::vector<S>& slots, std::size_t i, S tombstone, IsEmpty empty, IsTomb is_tomb) {
    const std::size_t mask = slots.size() - 1;
    if (!empty(slots[(i + 1) & mask])) {
        slots[i] = tombstone;
        return 0;
    }
    slots[i] = S{};
    std::size_t freed = 1;
    for (std::size_t j = (i - 1) & mask; is_tomb(slots[j]); j = (j - 1) & mask) {
        slots[j] = S{};
        ++freed;
    }
    return freed;
}

}  // namespace

std::size_t hash_key_of(std::span<const ValueView> key) noexcept {  // hash_key() took one integer already
    std::size_t h = 1469598103934665603ull;
    for (const ValueView& v : key) h = (h ^ hash_view(v)) * 1099511628211ull;
    return h;
}

std::size_t hash_key(std::span<const Value> key) noexcept {
    if (key.size() == 1)
        if (const auto* i = key[0].if_int()) return fold_int(*i);
    std::size_t h = 1469598103934665603ull;
    for (const Value& v : key) h = (h ^ hash_view(ValueView::of(v))) * 1099511628211ull;
    return h;
}

static std::size_t compute_key_hash(const InstanceState* s) noexcept {
    const auto& pk = s->mapper->primary_key();
    if (pk.size() == 1) {
        if (auto i = s->snapshot.int_at(pk[0])) return fold_int(*i);  // what hash_key() gives
        ValueView v = s->snapshot.view(pk[0]);
        return hash_key(std::span<const ValueView>(&v, 1));  // the same hash as a lookup's
    }
    std::size_t h = 1469598103934665603ull;
    for (std::size_t i : pk) h = (h ^ hash_view(s->snapshot.view(i))) * 1099511628211ull;
    return h;
}

bool IdentityMap::key_equals(std::span<const ValueView> k, const InstanceState* s) noexcept {
    const auto& pk = s->mapper->primary_key();
    if (k.size() != pk.size()) return false;
    for (std::size_t i = 0; i < pk.size(); ++i)
        if (!(k[i] == s->snapshot.view(pk[i]))) return false;
    return true;
}

[[gnu::noinline]] InstanceState* IdentityMap::find(std::span<const Value> key) const noexcept {
    RowViews views(key);
    return find(views.span());
}

InstanceState* IdentityMap::find(std::span<const ValueView> key) const noexcept {
    return find(key, hash_key(key));
}

ATHANOR_HOT InstanceState* IdentityMap::find_int(std::int64_t key, std::size_t* slot) const noexcept {
    // A key not loaded yet mostly finds its home slot empty: that look saves no registers; the
    // walk past other keys and tombstones is a tail call.
    if (!slots_.empty()) [[likely]] {
        const std::size_t i = static_cast<std::uint32_t>(fold_int(key)) & (slots_.size() - 1);
        if (!slots_[i].s()) {
            *slot = i;
            return nullptr;
        }
    }
    return find_int_walk(key, slot);
}

[[gnu::noinline]] InstanceState* IdentityMap::find_int_walk(std::int64_t key, std::size_t* slot) const noexcept {
    *slot = SIZE_MAX;
    if (slots_.empty()) return nullptr;
    std::size_t mask = slots_.size() - 1;
    auto h32 = static_cast<std::uint32_t>(fold_int(key));  // hash_key() of the one view
    auto tag = Slot::tag_of(h32);
    for (std::size_t i = h32 & mask;; i = (i + 1) & mask) {
        const Slot sl = slots_[i];
        InstanceState* st = sl.s();
        if (!st) {
            if (*slot == SIZE_MAX) *slot = i;
            return nullptr;
        }
        if (st == tomb()) {
            if (*slot == SIZE_MAX) *slot = i;
            continue;
        }
        if (sl.tag() != tag) continue;
        const auto& pk = st->mapper->primary_key();
        if (pk.size() != 1) continue;
        if (st->snapshot.int_equals(pk[0], key)) return st;
    }
}

InstanceState* IdentityMap::find(std::span<const ValueView> key, std::size_t h) const noexcept {
    if (slots_.empty()) return nullptr;
    std::size_t mask = slots_.size() - 1;
    auto h32 = static_cast<std::uint32_t>(h);
    auto tag = Slot::tag_of(h32);
    for (std::size_t i = h32 & mask;; i = (i + 1) & mask) {
        const Slot sl = slots_[i];
        InstanceState* st = sl.s();
        if (!st) return nullptr;
        if (sl.tag() == tag && st != tomb() && key_equals(key, st)) return st;
    }
}

ATHANOR_HOT InstanceState* IdentityMap::probe(std::span<const ValueView> key, std::size_t h, std::size_t* slot) {
    // As find_int(): an empty home slot is the usual answer for a row not loaded yet.
    if (!full_after_one()) [[likely]] {
        const std::size_t i = static_cast<std::uint32_t>(h) & (slots_.size() - 1);
        if (!slots_[i].s()) {
            *slot = i;
            return nullptr;
        }
    }
    return probe_walk(key, h, slot);
}

[[gnu::noinline]] InstanceState* IdentityMap::probe_walk(std::span<const ValueView> key, std::size_t h, std::size_t* slot) {
    if (full_after_one()) grow();
    std::size_t mask = slots_.size() - 1;
    auto h32 = static_cast<std::uint32_t>(h);
    auto tag = Slot::tag_of(h32);
    std::size_t free_at = SIZE_MAX;
    for (std::size_t i = h32 & mask;; i = (i + 1) & mask) {
        const Slot sl = slots_[i];
        InstanceState* st = sl.s();
        if (!st) {
            *slot = free_at != SIZE_MAX ? free_at : i;
            return nullptr;
        }
        if (st == tomb()) {
            if (free_at == SIZE_MAX) free_at = i;
        } else if (sl.tag() == tag && key_equals(key, st)) {
            return st;
        }
    }
}

ATHANOR_HOT void IdentityMap::insert_at(std::size_t slot, InstanceState* s, std::size_t hash) {
    // The slot found by probe(), unless the table changed since (then the usual way).
    if (slot >= slots_.size() || (slots_[slot].s() && slots_[slot].s() != tomb()) || full_after_one()) {
        insert(s, hash);
        return;
    }
    if (!slots_[slot].s()) ++used_;
    place(slot, s, hash);
    ++count_;
}

ATHANOR_HOT void IdentityMap::place(std::size_t i, InstanceState* s, std::size_t hash) {
    if (reinterpret_cast<std::uintptr_t>(s) & ~Slot::kAddr)
        throw Error("identity map: an object state's address does not fit in 48 bits");
    slots_[i] = Slot::make(s, static_cast<std::uint32_t>(hash));
    ++mutations_;
    s->key_hash_lo = static_cast<std::uint16_t>(hash);
}

std::uint32_t IdentityMap::hash_of(Slot sl) noexcept {
    return (std::uint32_t{sl.tag()} << 16) | sl.s()->key_hash_lo;
}

void IdentityMap::reserve(std::size_t n) {
    if ((n + (used_ - count_)) * 5 > slots_.size() * 4) grow(n);
}

void IdentityMap::grow(std::size_t at_least) {
    // The smallest power of two that holds what is live plus one (or `at_least`) at 80%: a
    // table grown by an insert doubles (40% after), a table full of tombstones is rebuilt at
    // its size. At most 80% keeps the slots at 10.5 bytes per object at 100k.
    std::size_t need = std::max(count_ + 1, at_least);
    std::size_t cap = 16;
    while (need * 5 > cap * 4) cap *= 2;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    ++mutations_;
    count_ = used_ = 0;
    std::size_t mask = cap - 1;
    // Each live slot reads its state (hash_of): at a million states, each a cache miss unless
    // asked for a few slots ahead.
    constexpr std::size_t kAhead = 8;
    for (std::size_t k = 0; k < old.size(); ++k) {
        if (k + kAhead < old.size()) __builtin_prefetch(old[k + kAhead].s());
        const Slot sl = old[k];
        InstanceState* st = sl.s();
        if (!st || st == tomb()) continue;
        std::size_t i = hash_of(sl) & mask;  // what compute_key_hash() gives, without decoding the key
        while (slots_[i].s()) i = (i + 1) & mask;
        slots_[i] = sl;
        ++count_;
        ++used_;
    }
}

void IdentityMap::insert(InstanceState* s) { insert(s, compute_key_hash(s)); }

void IdentityMap::insert(InstanceState* s, std::size_t hash) {
    if (full_after_one()) grow();
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
        InstanceState* st = slots_[i].s();
        if (!st || st == tomb()) {
            if (!st) ++used_;
            place(i, s, hash);
            ++count_;
            return;
        }
        if (st == s) return;
    }
}

ATHANOR_HOT void IdentityMap::erase(InstanceState* s) noexcept {
    if (slots_.empty()) return;
    std::size_t mask = slots_.size() - 1;
    auto bury = [&](std::size_t i) {
        --count_;
        ++mutations_;
        used_ -= erase_slot(slots_, i, Slot{reinterpret_cast<std::uintptr_t>(tomb())},
                            [](const Slot& sl) { return !sl.s(); }, [](const Slot& sl) { return sl.s() == tomb(); });
    };
    // The home slot needs as many low bits of the hash as the table has slots: up to 64Ki the
    // state holds them.
    const std::size_t home = mask <= 0xFFFF ? s->key_hash_lo : compute_key_hash(s);
    for (std::size_t i = home & mask;; i = (i + 1) & mask) {
        InstanceState* st = slots_[i].s();
        if (!st) break;
        if (st == s) return bury(i);
    }
    // Not where its key's hash leads: its key changed while it was mapped (a broken
    // invariant). A slot must never outlive its state, so look everywhere.
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].s() == s) return bury(i);
}

std::string describe(const Mapper& m, const void* obj) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", obj);
    return "<" + m.class_name() + " at " + buf + ">";
}

std::string describe_key(std::span<const Value> key) {
    std::string s = "(";
    for (std::size_t i = 0; i < key.size(); ++i) s += (i ? ", " : "") + key[i].repr();
    return s + (key.size() == 1 ? ",)" : ")");
}

ATHANOR_HOT void StateTable::index_pending() const {
    for (const Run& run : unindexed_)
        for (InstanceState* st = run.first; st != run.first + run.count; ++st) {
            if (!st->mapper || st->indexed) continue;  // freed since, or a reused slot seen twice
            if ((used_ + 1) * 10 > index_.size() * 7) grow();
            index_insert(st);
            st->indexed = true;
        }
    unindexed_.clear();
    unindexed_count_ = 0;
}

InstanceState* StateTable::find(const void* obj) const {
    if (!unindexed_.empty()) index_pending();
    if (index_.empty()) return nullptr;
    std::size_t mask = index_.size() - 1;
    for (std::size_t i = hash(obj) & mask;; i = (i + 1) & mask) {
        InstanceState* s = index_[i];
        if (!s) return nullptr;
        if (s != tomb() && s->obj.get() == obj) return s;
    }
}

void StateTable::grow() const {
    std::size_t cap = 64;
    while (cap < (count_ + 1) * 2) cap *= 2;
    std::vector<InstanceState*> old = std::move(index_);
    index_.assign(cap, nullptr);
    used_ = 0;
    for (InstanceState* s : old)
        if (s && s != tomb()) index_insert(s);
}

void StateTable::index_insert(InstanceState* st) const {
    std::size_t mask = index_.size() - 1;
    for (std::size_t i = hash(st->obj.get()) & mask;; i = (i + 1) & mask) {
        if (!index_[i] || index_[i] == tomb()) {
            if (!index_[i]) ++used_;
            index_[i] = st;
            return;
        }
    }
}

ATHANOR_HOT InstanceState& StateTable::emplace(const void* obj) {
    (void)obj;  // the caller sets st.obj before the state is indexed (see SessionImpl::track)
    InstanceState* st;
    if (!free_.empty()) {
        st = free_.back();
        free_.pop_back();
    } else {
        if (next_ == kChunk) {
            chunks_.push_back(std::make_unique<InstanceState[]>(kChunk));
            next_ = 0;
        }
        st = &chunks_.back()[next_++];
        fresh_ = st;
        ++count_;
        return *st;
    }
    fresh_ = nullptr;
    ++count_;
    return *st;
}

ATHANOR_HOT void StateTable::erase(InstanceState* st) noexcept {
    if (st->indexed && !index_.empty()) {
        std::size_t mask = index_.size() - 1;
        for (std::size_t i = hash(st->obj.get()) & mask;; i = (i + 1) & mask) {
            if (!index_[i]) break;
            if (index_[i] == st) {
                used_ -= erase_slot(index_, i, tomb(), [](InstanceState* x) { return !x; },
                                    [](InstanceState* x) { return x == tomb(); });
                break;
            }
        }
    }
    *st = InstanceState{};  // releases the object and the snapshot; mapper == nullptr marks free
    free_.push_back(st);
    --count_;
}

void StateTable::clear() noexcept {
    chunks_.clear();
    free_.clear();
    next_ = kChunk;
    index_.clear();
    unindexed_.clear();
    unindexed_count_ = 0;
    fresh_ = nullptr;
    count_ = used_ = 0;
}

bool SessionImpl::mappers_alive() const noexcept {
    for (const auto& k : mapper_cache)
        if (!k.registry_alive->load(std::memory_order_relaxed)) return false;
    return true;
}

[[gnu::noinline, gnu::cold]] void SessionImpl::check_registries() const {
    std::uint64_t destroyed = Registry::destroyed_count();
    if (destroyed == registries_checked) return;  // no registry died since the last check
    for (const auto& k : mapper_cache)
        if (!k.registry_alive->load(std::memory_order_relaxed))
            throw InvalidRequestError("the Registry that mapped class '" + detail::demangle(k.type.name()) +
                                      "' was destroyed while this Session still uses it; a Registry "
                                      "must outlive its Sessions (only rollback() and close() are "
                                      "possible now)");
    registries_checked = destroyed;
}

const Mapper& SessionImpl::remember(std::type_index type, const Mapper& m, const Registry& r) const {
    mapper_cache.push_back({type, &m, m.dynamic(), r.life()});
    return m;
}

void SessionImpl::raise_pending_rollback() const {
    throw PendingRollbackError(
        "This Session's transaction has been rolled back due to a previous exception during "
        "flush. To begin a new transaction with this Session, first issue Session.rollback(). "
        "Original exception was: " + failure);
}

[[gnu::noinline, gnu::cold]] void SessionImpl::open_connection() { conn.emplace(engine->connect()); }

InstanceState* SessionImpl::find(const void* obj) const {
    return states.find(obj);
}

void SessionImpl::sweep() {
    if (!frames.empty() || flushing) return;  // savepoint frames refer to states
    // The session's buffer (thousands of entries): freeing a block that large each time
    // makes glibc consolidate its heap.
    Borrowed<InstanceState*> borrowed(sweep_scratch);
    std::vector<InstanceState*>& gone = borrowed.v;
    states.for_each([&](InstanceState& st) {
        if (droppable(st)) gone.push_back(&st);
    });
    for (InstanceState* st : gone) untrack(st);
    // One object kept alive must not pin a 64 KiB block: when the blocks held are more than
    // twice what the live snapshots need, the live snapshots move to fresh blocks.
    if (arena_sparse()) {
        states.for_each([&](InstanceState& st) {
            if (!st.snapshot) return;
            bool mapped = st.in_identity_map;
            identity_erase(&st);  // the map reads keys from the snapshot
            st.snapshot = st.snapshot.repack(arena);
            if (mapped) identity_insert(&st);
        });
        for (auto& [st, snap] : committed_before) snap = snap.repack(arena);
    }
    sweep_at = std::max<std::size_t>(256, 2 * states.size());
}

ATHANOR_HOT InstanceState& SessionImpl::track(const Mapper& m, std::shared_ptr<void> obj, ObjectState st) {
    if (states.size() >= sweep_at && !loading) sweep();  // before the new state exists: it is not swept
    InstanceState& ref = states.emplace(obj.get());
    ref.obj = std::move(obj);
    ref.mapper = &m;
    ref.state = st;
    ref.add_seq = ++add_counter;
    states.index(&ref);
    return ref;
}

void SessionImpl::identity_insert(InstanceState* st) {
    map_of(st->mapper).insert(st);
    st->in_identity_map = true;
}

ATHANOR_HOT void SessionImpl::identity_erase(InstanceState* st) {
    if (!st->in_identity_map) return;
    map_of(st->mapper).erase(st);
    st->in_identity_map = false;
}

void SessionImpl::forget_generated_key(InstanceState* st) {
    // INSERTed in a rolled-back transaction: the key the database generated is void again, so
    // the object is transient and adding it again inserts it anew.
    if (const Column* ai = st->mapper->table().autoincrement_column())
        if (int i = st->mapper->index_of(ai->name()); i >= 0)
            st->mapper->columns()[static_cast<std::size_t>(i)].set(st->obj.get(), Value(0));
}

void SessionImpl::replace_snapshot(InstanceState* st, Snapshot s) {
    if (!st->new_in_tx && !st->changed_in_tx && st->snapshot) {
        committed_before.emplace(st, st->snapshot);
        st->changed_in_tx = true;
    }
    st->snapshot = std::move(s);
}

const Snapshot& SessionImpl::committed_of(InstanceState* st) const {
    if (st->changed_in_tx) {
        auto it = committed_before.find(st);
        if (it != committed_before.end()) return it->second;
    }
    return st->snapshot;
}

// The rare parts of the per-object paths, out of line: a lookup's code stays a few cache lines
// (spread out, it evicts SQLite's own from the instruction cache).
[[gnu::noinline, gnu::cold]] void SessionImpl::untrack_rare(InstanceState* st) {
    if (st->changed_in_tx) committed_before.erase(st);
    for (auto& f : frames) f.entries.erase(st);
}

// Reads the value itself: the decoding of every kind stays out of has_changes()'s loop.
// The reader goes by value both ways (one pointer each, in registers): has_changes()'s own
// reader then never lives in memory.
[[gnu::noinline]] static std::pair<bool, Snapshot::Reader> column_equals_rare(const ColumnProperty& p, const void* obj,
                                                                             Snapshot::Reader r) {
    const bool eq = column_equals(p, obj, r.next());
    return {eq, r};
}

ATHANOR_HOT void SessionImpl::untrack(InstanceState* st) {
    if (st->changed_in_tx || !frames.empty()) [[unlikely]]
        untrack_rare(st);
    identity_erase(st);
    states.erase(st);
}

ATHANOR_HOT bool SessionImpl::has_changes(const InstanceState& st) const {
    if (st.state != ObjectState::persistent || !st.snapshot) return false;
    const auto& props = st.mapper->columns();
    const std::size_t n = std::min(props.size(), st.snapshot.size());
    const ColumnProperty* const prop = props.data();  // in a local: not read again per column
    const void* obj = st.obj.get();
    auto r = st.snapshot.reader();
    // column_equals() of each, with the common members compared straight from the packed
    // values (no view built, one branch on the member's kind).
    for (std::size_t i = 0; i < n; ++i) {
        const ColumnProperty& p = prop[i];
        const char* at = static_cast<const char*>(obj) + p.offset;
        if (p.direct == ColumnProperty::Direct::int64 && r.kind() == Value::Kind::integer) {
            if (r.next_int() != *reinterpret_cast<const std::int64_t*>(at)) return true;
        } else if (p.direct == ColumnProperty::Direct::text && r.kind() == Value::Kind::text) {
            if (!bytes_equal(r.next_bytes(), *reinterpret_cast<const std::string*>(at))) return true;
        } else {
            const auto [eq, next] = column_equals_rare(p, obj, r);
            if (!eq) return true;
            r = next;
        }
    }
    return false;
}

[[gnu::noinline, gnu::cold]] void SessionImpl::reload_expired(const Mapper& m, InstanceState* st, std::span<const ValueView> row) {
    // Members the program changed since they were loaded (they differ from the snapshot) are
    // kept, as SQLAlchemy keeps attributes set after expiry: they are flushed as changes. The
    // others take the row's values.
    const auto& props = m.columns();
    if (!st->snapshot) {
        m.write(st->obj.get(), row.data());
    } else {
        auto r = st->snapshot.reader();
        for (std::size_t i = 0; i < props.size(); ++i)
            if (column_equals(props[i], st->obj.get(), r.next())) props[i].set_view(st->obj.get(), row[i]);
    }
    identity_erase(st);
    replace_snapshot(st, Snapshot::pack(arena, row.data(), row.size()));
    identity_insert(st);
    st->expired = false;
}

ATHANOR_HOT std::shared_ptr<void> SessionImpl::load_row(const Mapper& m, IdentityMap& map, std::span<const ValueView> row,
                                                     const MissHint* hint) {
    const auto& pk = m.primary_key();
    std::size_t key_hash;
    std::size_t slot = 0;
    if (hint && hint->mutations == map.mutations() && pk.size() == 1 && row[pk[0]].kind == Value::Kind::integer &&
        row[pk[0]].i == hint->key) [[likely]] {
        // get() saw this integer key missing and nothing has touched the map since: the row's
        // key is that one (an integer, not text that reads the same), so it goes where the miss was.
        key_hash = fold_int(hint->key);
        slot = hint->slot;
    } else {
        std::span<const ValueView> key;
        if (pk.size() == 1) {
            key = std::span<const ValueView>(&row[pk[0]], 1);
        } else {
            size_scratch(key_views, pk.size());
            for (std::size_t k = 0; k < pk.size(); ++k) key_views[k] = row[pk[k]];
            key = key_views;
        }
        key_hash = hash_key(key);
        if (InstanceState* st = map.probe(key, key_hash, &slot)) {
            if (st->expired) [[unlikely]]
                reload_expired(m, st, row);
            return st->obj;
        }
    }
    std::shared_ptr<void> obj = m.create();
    m.write(obj.get(), row.data());  // the row's views stay valid until the next fetch
    // The caller's reference is copied from `obj`, not read back from the state just written
    // (a 16-byte load of two 8-byte stores stalls the CPU).
    InstanceState& st = track(m, obj, ObjectState::persistent);
    st.snapshot = Snapshot::pack(arena, row.data(), row.size());
    st.in_identity_map = true;
    map.insert_at(slot, &st, key_hash);
    last_loaded = &st;
    if (m.has_relationships()) instrument(st, Instrument::loaded);
    return obj;
}

std::shared_ptr<void> SessionImpl::load_row(const Mapper& m, const Values& row) {
    RowViews views(row);
    return load_row(m, map_of(&m), views.span());
}

void SessionImpl::commit() {
    check_usable();
    flush();
    // Release open savepoints innermost first, then COMMIT.
    while (!frames.empty()) {
        if (frames.back().tx.is_active()) frames.back().tx.commit();
        frames.pop_back();
    }
    if (conn) conn->commit();
    std::vector<InstanceState*> gone;
    bool any_pending = false;
    states.for_each([&](InstanceState& st) {
        if (st.state == ObjectState::deleted) {
            gone.push_back(&st);
            return;
        }
        any_pending |= st.state == ObjectState::pending;
        st.changed_in_tx = false;
        st.new_in_tx = false;
        if (options.expire_on_commit) {
            st.expired = true;
            expire_relations(st);
        }
    });
    for (InstanceState* st : gone) untrack(st);
    committed_before.clear();
    if (!any_pending) add_counter = 0;
}

void SessionImpl::rollback() {
    if (conn) {
        try {
            conn->rollback();
        } catch (const Error&) {
            // The connection may already have rolled back (failed flush); state is restored below.
        }
    }
    frames.clear();  // their savepoints ended with the transaction
    failed = false;
    failure.clear();
    removals.clear();
    if (!mappers_alive()) {
        // The objects' mappers are gone with their registry: nothing can be restored into
        // them, so the session lets go of everything.
        expunge_all();
        return;
    }
    std::vector<InstanceState*> expunge;
    states.for_each([&](InstanceState& stp) {
        InstanceState* st = &stp;
        if (st->state == ObjectState::pending || st->new_in_tx) {
            if (st->new_in_tx) forget_generated_key(st);
            expunge.push_back(st);
            return;
        }
        // Persistent or deleted before this transaction: back to the committed values.
        identity_erase(st);
        Snapshot committed = committed_of(st);
        if (committed) st->mapper->write(st->obj.get(), committed.values());
        st->snapshot = std::move(committed);
        st->changed_in_tx = false;
        st->state = ObjectState::persistent;
        st->marked_deleted = false;
        st->expired = false;
    });
    for (InstanceState* st : expunge) untrack(st);
    committed_before.clear();
    states.for_each([&](InstanceState& st) {
        identity_insert(&st);
        expire_relations(st);  // collections may hold objects the rollback took back
    });
}

// ---- detached objects and live sessions ------------------------------------------------------

namespace {
// Objects a session let go of while the program held them (detached), by address: an open-
// addressing table of weak references (no allocation per entry; a closing session with 100k
// objects adds them in one pass). Entries whose objects are gone are dropped when it grows.
struct DetachedSet {
    struct Slot {
        const void* key = nullptr;  // nullptr: empty; tomb(): erased
        std::weak_ptr<void> obj;
    };
    std::mutex mutex;
    std::vector<Slot> slots;
    std::size_t used = 0;  // live entries and tombstones
    // Keys held (live or expired, not yet dropped), readable without the lock: add() of a
    // new object skips the lock while nothing was ever detached (or all was taken back).
    std::atomic<std::size_t> keys{0};
    static const void* tomb() noexcept { return reinterpret_cast<const void*>(alignof(std::max_align_t)); }
    static std::size_t hash(const void* p) noexcept {
        auto x = reinterpret_cast<std::uintptr_t>(p);
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        return static_cast<std::size_t>(x);
    }
    // Room for `more` entries: a rehash drops tombstones and expired objects.
    void reserve(std::size_t more) {
        if ((used + more) * 2 <= slots.size()) return;
        std::vector<Slot> old = std::move(slots);
        std::size_t live = 0;
        for (const Slot& sl : old) live += sl.key && sl.key != tomb() && !sl.obj.expired();
        std::size_t n = 1024;
        while (n < (live + more) * 4) n *= 2;
        slots.assign(n, Slot{});
        used = 0;
        keys.store(0, std::memory_order_relaxed);
        for (Slot& sl : old)
            if (sl.key && sl.key != tomb() && !sl.obj.expired()) put(sl.key, std::move(sl.obj));
    }
    void put(const void* key, std::weak_ptr<void> obj) {
        std::size_t mask = slots.size() - 1, i = hash(key) & mask;
        Slot* free_slot = nullptr;
        for (;; i = (i + 1) & mask) {
            Slot& sl = slots[i];
            if (sl.key == key) {
                sl.obj = std::move(obj);
                return;
            }
            if (sl.key == tomb() && !free_slot) free_slot = &sl;
            if (!sl.key) {
                if (!free_slot) {
                    free_slot = &sl;
                    ++used;
                }
                free_slot->key = key;
                free_slot->obj = std::move(obj);
                keys.fetch_add(1, std::memory_order_release);
                return;
            }
        }
    }
    Slot* find(const void* key) {
        if (slots.empty()) return nullptr;
        std::size_t mask = slots.size() - 1, i = hash(key) & mask;
        for (;; i = (i + 1) & mask) {
            Slot& sl = slots[i];
            if (sl.key == key) return &sl;
            if (!sl.key) return nullptr;
        }
    }
};
DetachedSet& detached_set() {
    static DetachedSet d;
    return d;
}
struct LiveSessions {
    std::mutex mutex;
    std::vector<const SessionImpl*> list;
    std::atomic<std::size_t> count{0};  // list.size(), readable without the lock
    std::atomic<std::uint64_t> next_id{1};
};
LiveSessions& live_sessions() {
    static LiveSessions l;
    return l;
}
bool same_object(const std::weak_ptr<void>& w, const std::shared_ptr<void>& s) {
    return !w.owner_before(s) && !s.owner_before(w);  // one control block: not a reused address
}
}  // namespace

void note_detached(std::span<const std::shared_ptr<void>> objs) {
    auto& d = detached_set();
    std::lock_guard lock(d.mutex);
    d.reserve(objs.size());
    for (const auto& obj : objs) d.put(obj.get(), obj);
}

void note_detached(const std::shared_ptr<void>& obj) { note_detached(std::span<const std::shared_ptr<void>>(&obj, 1)); }

namespace {
RelationState* detach_mark(const Mapper& m, const void* obj) {
    if (!m.has_relationships()) return nullptr;
    return m.relationships().front().member(const_cast<void*>(obj))->state();
}
}  // namespace

void note_detached(const Mapper& m, const std::shared_ptr<void>& obj) {
    if (RelationState* rs = detach_mark(m, obj.get())) rs->detached = true;
    else note_detached(obj);
}

bool take_detached(const Mapper& m, const std::shared_ptr<void>& obj) {
    if (RelationState* rs = detach_mark(m, obj.get())) {
        bool was = rs->detached;
        rs->detached = false;
        return was;
    }
    return take_detached(obj);
}

bool take_detached(const std::shared_ptr<void>& obj) {
    auto& d = detached_set();
    // An object detached by another thread reached this one through the program's own
    // synchronization, which orders that note before this read.
    if (d.keys.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard lock(d.mutex);
    DetachedSet::Slot* sl = d.find(obj.get());
    if (!sl) return false;
    bool same = same_object(sl->obj, obj);
    sl->key = DetachedSet::tomb();
    sl->obj.reset();
    d.keys.fetch_sub(1, std::memory_order_relaxed);
    return same;
}

SessionImpl::SessionImpl(std::shared_ptr<Engine> e, SessionOptions o)
    : engine(std::move(e)), options(o) {
    auto& l = live_sessions();
    id = l.next_id++;
    thread = std::this_thread::get_id();
    std::lock_guard lock(l.mutex);
    l.list.push_back(this);
    l.count.fetch_add(1, std::memory_order_relaxed);
}

SessionImpl::~SessionImpl() {
    auto& l = live_sessions();
    std::lock_guard lock(l.mutex);
    std::erase(l.list, this);
    l.count.fetch_sub(1, std::memory_order_relaxed);
}

const SessionImpl* SessionImpl::other_holder(const void* obj) const {
    // This session alone in the process (the common case): no lock. Sessions of this thread
    // are counted before this read (they were made on it); other threads' are not looked into.
    if (live_sessions().count.load(std::memory_order_relaxed) <= 1) return nullptr;
    std::vector<const SessionImpl*> mine;
    {
        auto& l = live_sessions();
        std::lock_guard lock(l.mutex);
        for (const SessionImpl* s : l.list)
            if (s != this && s->thread == thread) mine.push_back(s);
    }
    // Only sessions of this thread are looked into: another thread's session may be changing
    // its tables right now (a Session and its objects belong to one thread).
    for (const SessionImpl* s : mine)
        if (s->find(obj)) return s;
    return nullptr;
}

void SessionImpl::note_held_detached() {
    std::vector<const std::shared_ptr<void>*> held;
    states.for_each([&](InstanceState& st) {
        // Rows INSERTed in a transaction that is being thrown away do not exist: those objects
        // are transient again, not detached.
        if (st.state == ObjectState::persistent && !st.marked_deleted && !st.new_in_tx && st.obj.use_count() > 1) {
            if (RelationState* rs = detach_mark(*st.mapper, st.obj.get())) rs->detached = true;
            else held.push_back(&st.obj);
        }
    });
    if (held.empty()) return;
    auto& d = detached_set();
    std::lock_guard lock(d.mutex);  // one lock for all
    d.reserve(held.size());
    for (const auto* obj : held) d.put(obj->get(), *obj);
}

void SessionImpl::release_all(bool note_held) {
    if (any_relationships && mappers_alive()) {
        // Collections hold objects too (their counts say held), and release_pairs() needs
        // every object alive: the passes one after the other.
        if (note_held) note_held_detached();
        expunge_all();
        return;
    }
    // At a million objects, a pass that only reads each object's count misses the cache on
    // every one; the same pass drops the reference, and the held ones move out (no count change).
    std::vector<std::shared_ptr<void>> held;
    states.for_each([&](InstanceState& st) {
        if (note_held && st.state == ObjectState::persistent && !st.marked_deleted && !st.new_in_tx &&
            st.obj.use_count() > 1) {
            if (RelationState* rs = detach_mark(*st.mapper, st.obj.get())) rs->detached = true;
            else held.push_back(std::move(st.obj));
        }
        st.obj.reset();
        st.snapshot = Snapshot();
    });
    if (!held.empty()) note_detached(held);
    expunge_all();
}

void SessionImpl::expunge_all() {
    if (any_relationships && mappers_alive()) states.for_each([&](InstanceState& st) { release_pairs(st); });
    removals.clear();
    committed_before.clear();
    states.clear();
    last_loaded = nullptr;
    identity.clear();
    last_map_mapper_ = nullptr;
    last_map_ = nullptr;
    for (auto& f : frames) f.entries.clear();
}

}  // namespace detail

using detail::InstanceState;
using detail::SessionImpl;

// ---- Session --------------------------------------------------------------------------------

Session::Session(std::shared_ptr<Engine> bind, SessionOptions options)
    : impl_(std::make_shared<SessionImpl>(std::move(bind), options)) {
    if (!impl_->engine) throw ArgumentError("Session needs an Engine (bind)");
}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&& o) noexcept {
    if (this != &o) {
        try {
            close();
        } catch (...) {
        }
        impl_ = std::move(o.impl_);
    }
    return *this;
}
Session::~Session() {
    if (!impl_) return;
    try {
        close();
    } catch (...) {
        // A destructor must not throw; the connection rolls back when it closes.
    }
}

ATHANOR_HOT const Mapper& Session::mapper_by_type(std::type_index t) const {
    // The last class asked for first: a loop of get<T>() asks for the same one each time. The
    // rest is a tail call: this path saves no registers.
    const SessionImpl& impl = *impl_;
    if (Registry::destroyed_count() == impl.registries_checked && impl.last_type_mapper && impl.last_type == t)
        [[likely]] return *impl.last_type_mapper;
    return mapper_by_type_slow(t);
}

[[gnu::noinline]] const Mapper& Session::mapper_by_type_slow(std::type_index t) const {
    impl_->check_mappers();  // before any cached mapper is looked at
    if (impl_->last_type_mapper && impl_->last_type == t) return *impl_->last_type_mapper;
    for (const auto& k : impl_->mapper_cache)
        if (k.type == t && !k.dynamic) {
            impl_->last_type = t;
            impl_->last_type_mapper = k.mapper;
            return *k.mapper;
        }
    for (const Registry* r : Registry::all())
        if (const Mapper* m = r->find(t)) {
            m->configure();
            return impl_->remember(t, *m, *r);
        }
    throw UnmappedClassError("Class '" + detail::demangle(t.name()) + "' is not mapped");
}

const Mapper& Session::dynamic_mapper(const Table& t) const {
    impl_->check_mappers();
    for (const auto& k : impl_->mapper_cache)
        if (k.dynamic && &k.mapper->table() == &t) return *k.mapper;
    for (const Registry* r : Registry::all())
        if (const Mapper* m = r->find_dynamic(t.name()); m && &m->table() == &t)
            return impl_->remember(std::type_index(typeid(Record)), *m, *r);
    throw UnmappedClassError("no Record mapper for table '" + t.name() + "' (use registry.map_dynamic(table))");
}

void Session::add_impl(const Mapper& m, std::shared_ptr<void> obj) {
    impl_->check_usable();
    // A session holds each of its objects by a shared_ptr: the only reference (add() of a
    // pointer handed over) is in no session, and the lookups are skipped.
    if (obj.use_count() > 1) {
        if (InstanceState* st = impl_->find(obj.get())) {
            if (st->marked_deleted) st->marked_deleted = false;  // add() after delete_() undoes it
            return;
        }
        if (const SessionImpl* other = impl_->other_holder(obj.get()))
            throw InvalidRequestError("Object '" + detail::describe(m, obj.get()) + "' is already attached to session '" +
                                      std::to_string(other->id) + "' (this is '" + std::to_string(impl_->id) + "')");
    }
    if (detail::take_detached(m, obj)) {
        // Loaded by a session that has since let it go: it is persistent here, with the
        // identity its key gives; its row is UPDATEd at the next flush (which columns changed
        // while it was detached is not known, so all of them are written).
        std::vector<Value> values;
        m.read(obj.get(), values);
        std::vector<Value> key;
        for (std::size_t i : m.primary_key()) key.push_back(values[i]);
        auto it = impl_->identity.find(&m);
        if (it != impl_->identity.end())
            if (it->second.find(key))
                throw InvalidRequestError("Can't attach instance " + detail::describe(m, obj.get()) +
                                          "; another instance with key " + detail::describe_key(key) +
                                          " is already present in this session.");
        InstanceState& st = impl_->track(m, std::move(obj), ObjectState::persistent);
        st.snapshot = detail::Snapshot::pack(impl_->arena, values);
        st.reattached = true;
        impl_->identity_insert(&st);
        impl_->instrument(st, SessionImpl::Instrument::keep);
        impl_->cascade_add(st);
        return;
    }
    InstanceState& st = impl_->track(m, std::move(obj), ObjectState::pending);
    impl_->instrument(st, SessionImpl::Instrument::fresh);
    impl_->cascade_add(st);
}

void Session::delete_impl(const Mapper& m, const void* obj) {
    impl_->check_usable();
    InstanceState* st = impl_->find(obj);
    if (!st)
        throw InvalidRequestError("Instance " + detail::describe(m, obj) + " is not persisted");
    if (st->state == ObjectState::pending) {
        impl_->untrack(st);
        return;
    }
    if (st->state == ObjectState::persistent) st->marked_deleted = true;
}

void Session::expunge_impl(const void* obj) {
    InstanceState* st = impl_->find(obj);
    if (!st) throw InvalidRequestError("Instance is not present in this Session");
    if (st->state == ObjectState::persistent && !st->marked_deleted && !st->new_in_tx)
        detail::note_detached(*st->mapper, st->obj);
    if (impl_->any_relationships) {
        impl_->cascade_expunge(*st);
        impl_->release_pairs(*st);
    }
    impl_->untrack(st);
}

void Session::expunge_all() { impl_->release_all(impl_->mappers_alive()); }

void Session::close() {
    if (!impl_) return;
    impl_->get_cursors.clear();  // they hold the connection
    impl_->last_get_mapper = nullptr;
    impl_->last_get = nullptr;
    impl_->eq_cursors.clear();
    if (impl_->conn) {
        impl_->conn->close();  // rolls back; the savepoints end with it
        impl_->frames.clear();
        impl_->conn.reset();
    }
    impl_->failed = false;
    impl_->release_all(true);
}

namespace {
[[noreturn, gnu::noinline, gnu::cold]] void raise_key_size(const Mapper& m, std::size_t got) {
    throw InvalidRequestError("Incorrect number of values in identifier formed for get(); primary key "
                              "of " + m.class_name() + " has " + std::to_string(m.primary_key().size()) +
                              " column(s), got " + std::to_string(got));
}
}  // namespace

ATHANOR_HOT std::shared_ptr<void> Session::get_impl(const Mapper& m, std::span<const Value> pk) {
    impl_->check_usable();
    if (pk.size() != m.primary_key().size()) [[unlikely]]
        raise_key_size(m, pk.size());
    return impl_->get(m, pk);
}

namespace detail {
std::vector<int> bind_positions(const Cursor& c) {
    std::vector<int> out;
    for (const BindSlot& slot : c.compiled().binds)
        out.push_back(slot.source == BindSlot::Source::param ? std::stoi(slot.key.substr(2)) : -1);
    return out;
}

// Out of line and cold: it runs once per mapper and session, and get()'s per-call code stays small.
[[gnu::noinline, gnu::cold]] SessionImpl::GetCursor& SessionImpl::add_get_cursor(const Mapper& m, Connection& c) {
    GetCursor fresh{c.cursor(m.select_by_pk()), {}};
    fresh.slots = bind_positions(fresh.cursor);
    return get_cursors.emplace(&m, std::move(fresh)).first->second;
}

ATHANOR_HOT void SessionImpl::drop_last_loaded() {
    // Its slot may hold another state by now, or none: the same test applies to whatever is there.
    if (last_loaded->mapper && !loading && !flushing && frames.empty() && droppable(*last_loaded)) {
        untrack(last_loaded);
        // The sweep may not come (few objects stay), but its compaction must: each object the
        // program keeps would pin the arena block its snapshot is in.
        if (arena_sparse()) sweep();
    }
    last_loaded = nullptr;
}

[[gnu::noinline, gnu::cold]] void SessionImpl::switch_get_cursor(const Mapper& m, Connection& c) {
    auto gc = get_cursors.find(&m);
    last_get = gc != get_cursors.end() ? &gc->second : &add_get_cursor(m, c);
    last_get_mapper = &m;
}

ATHANOR_HOT std::shared_ptr<void> SessionImpl::get(const Mapper& m, std::span<const Value> pk) {
    SessionImpl* impl_ = this;
    if (last_loaded) drop_last_loaded();
    InstanceState* known = nullptr;
    IdentityMap& map = map_of(&m);
    const std::int64_t* int_key = pk.size() == 1 ? pk[0].if_int() : nullptr;
    MissHint hint{int_key ? *int_key : 0, SIZE_MAX, 0};
    if (InstanceState* st = int_key ? map.find_int(*int_key, &hint.slot) : map.find(pk)) {
        if (st->state == ObjectState::deleted || st->marked_deleted) return nullptr;
        if (!st->expired || st->state != ObjectState::persistent) return st->obj;  // no SQL
        known = st;  // expired: its members are reloaded from the row, as SQLAlchemy does
    }
    hint.mutations = map.mutations();
    // Like SQLAlchemy's get(), no autoflush: the key is looked up in the database as it is.
    // One prepared statement per mapper, values bound by position.
    Connection& c = impl_->connection();
    if (&m != last_get_mapper) [[unlikely]]
        switch_get_cursor(m, c);
    Cursor& cur = last_get->cursor;
    const auto& slots = last_get->slots;
    size_scratch(get_ptrs, slots.size());
    for (std::size_t k = 0; k < slots.size(); ++k) get_ptrs[k] = &pk[static_cast<std::size_t>(slots[k])];
    cur.execute(get_ptrs);
    // Members are set straight from the row's views (no copy of the row), as Query's loads do.
    std::vector<ValueView>& row = eq_row;  // the session's scratch: no allocation per call
    struct Done {  // the statement's read ends with this call, also when loading throws
        Cursor& c;
        ~Done() { c.reset_row(); }
    } done{cur};
    if (!cur.row_views(row)) {
        if (known) impl_->untrack(known);  // its row was deleted elsewhere: no stale object
        return nullptr;
    }
    return impl_->load_row(m, map, row, int_key && !known ? &hint : nullptr);
}
}  // namespace detail

std::shared_ptr<void> Session::merge_impl(const Mapper& m, const void* obj) {
    impl_->check_usable();
    // As SQLAlchemy: no autoflush while merging (half-merged copies must not be flushed by a
    // collection load on the way).
    auto guard = no_autoflush();
    // Each source object is merged once (a back_populates pair leads back to it).
    std::unordered_map<const void*, std::shared_ptr<void>> merged;
    std::function<std::shared_ptr<void>(const Mapper&, const void*)> merge_one = [&](const Mapper& mm, const void* src) {
        if (auto it = merged.find(src); it != merged.end()) return it->second;
        if (InstanceState* st = impl_->find(src)) return merged[src] = st->obj;  // already ours
        std::vector<Value> key = mm.identity(src);
        bool has_key = true;
        for (std::size_t i = 0; i < key.size(); ++i) {
            const Column* c = mm.columns()[mm.primary_key()[i]].column;
            if (key[i].is_null() || (c->autoincrement() && key[i] == Value(0))) has_key = false;
        }
        std::shared_ptr<void> target;
        if (has_key) target = get_impl(mm, key);
        std::vector<Value> values;
        mm.read(src, values);
        if (!target) {
            target = mm.create();
            mm.write(target.get(), values);
            InstanceState& st = impl_->track(mm, target, ObjectState::pending);
            impl_->instrument(st, SessionImpl::Instrument::fresh);
        } else {
            mm.write(target.get(), values);
        }
        merged[src] = target;
        // merge cascade: the source's loaded relationships, merged in turn, replace the
        // target's (an unloaded one is left as it is, as SQLAlchemy does).
        if (mm.has_relationships())
            for (const RelationshipProperty& r : mm.relationships()) {
                if (!r.cascade.merge || r.viewonly || r.write_only) continue;
                const detail::RelationMember* from = r.member(const_cast<void*>(src));
                if (!from->loaded()) continue;
                std::vector<std::shared_ptr<void>> items;
                for (std::size_t i = 0; i < from->erased_size(); ++i)
                    if (auto c = from->erased_at(i)) items.push_back(merge_one(*r.target_mapper, c.get()));
                r.member(target.get())->erased_set(std::move(items));
            }
        return target;
    };
    return merge_one(m, obj);
}

void Session::refresh_impl(const Mapper& m, const void* obj) {
    impl_->check_usable();
    InstanceState* st = impl_->find(obj);
    if (!st || st->state != ObjectState::persistent)
        throw InvalidRequestError("Instance " + detail::describe(m, obj) + " is not persistent within this Session");
    std::vector<Value> buf;
    auto key = st->key_span(buf);
    std::vector<ColumnElement> parts;
    for (std::size_t i = 0; i < key.size(); ++i)
        parts.push_back(m.columns()[m.primary_key()[i]].column->expr() == key[i]);
    // refresh() discards unflushed changes: back to the snapshot, then the load overwrites it.
    if (st->snapshot) st->mapper->write(st->obj.get(), st->snapshot.values());
    if (impl_->any_relationships) impl_->cascade_refresh_expire(*st, true);
    impl_->expire_relations(*st);
    st->expired = true;
    auto rows = detail::query_all(*this, m, detail::query_select(m).where(and_(parts)), false);
    if (rows.empty()) {
        impl_->untrack(st);
        throw ObjectDeletedError("Instance " + detail::describe(m, obj) + " has been deleted, or its row is "
                                 "otherwise not present.");
    }
}

void Session::expire_impl(const void* obj) {
    InstanceState* st = impl_->find(obj);
    if (!st) throw InvalidRequestError("Instance is not present in this Session");
    if (impl_->any_relationships) impl_->cascade_refresh_expire(*st, false);  // while still loaded
    st->expired = true;
    impl_->expire_relations(*st);
}

void Session::expire_all() {
    impl_->states.for_each([&](InstanceState& st) {
        st.expired = true;
        impl_->expire_relations(st);
    });
}

ObjectState Session::state_impl(const Mapper& m, const void* obj) const {
    if (InstanceState* st = impl_->find(obj))
        return st->marked_deleted ? ObjectState::deleted : st->state;
    // Not in this session: detached if it carries a database identity (every primary key
    // column assigned), transient otherwise, as SQLAlchemy tells them apart by the key.
    for (std::size_t i : m.primary_key()) {
        const ColumnProperty& p = m.columns()[i];
        Value v = p.get(obj);
        if (v.is_null() || (p.column->autoincrement() && v == Value(0))) return ObjectState::transient;
    }
    return ObjectState::detached;
}

bool Session::modified_impl(const void* obj) const {
    InstanceState* st = impl_->find(obj);
    return st && (impl_->has_changes(*st) ||
                  (st->state == ObjectState::persistent && impl_->any_relationships && impl_->relations_modified(*st)));
}

IdentitySet Session::dirty() const {
    IdentitySet out;
    impl_->states.for_each([&](InstanceState& st) {
        if (!st.marked_deleted && st.state == ObjectState::persistent &&
            (impl_->has_changes(st) || (impl_->any_relationships && impl_->relations_modified(st))))
            out.add(st.obj);
    });
    return out;
}
IdentitySet Session::new_objects() const {
    IdentitySet out;
    impl_->states.for_each([&](InstanceState& st) {
        if (st.state == ObjectState::pending) out.add(st.obj);
    });
    return out;
}
IdentitySet Session::deleted() const {
    IdentitySet out;
    impl_->states.for_each([&](InstanceState& st) {
        if (st.marked_deleted) out.add(st.obj);
    });
    return out;
}
bool Session::contains(const void* obj) const noexcept { return impl_->find(obj) != nullptr; }

void Session::flush() { impl_->flush(); }
void Session::commit() { impl_->commit(); }
void Session::rollback() { impl_->rollback(); }
SessionTransaction Session::begin_nested() { return impl_->begin_nested(); }
NoAutoflush Session::no_autoflush() { return NoAutoflush(impl_); }
bool Session::in_transaction() const noexcept { return impl_->conn && impl_->conn->in_transaction(); }
Connection& Session::connection() {
    Connection& c = impl_->connection();
    if (!c.in_transaction()) c.begin();  // the implicit transaction, taken over
    return c;
}
const std::shared_ptr<Engine>& Session::bind() const noexcept { return impl_->engine; }

Result Session::execute(const Executable& stmt, const Params& params) {
    impl_->check_usable();
    impl_->autoflush();
    return connection().execute(stmt, params);
}
std::vector<std::shared_ptr<void>> Session::load_objects(const Mapper& m, const Executable& stmt, const Params& params) {
    impl_->check_usable();
    impl_->autoflush();
    Result r = connection().execute(stmt, params);
    if (r.keys().size() < m.columns().size())
        throw ArgumentError("scalars<shared_ptr<" + m.class_name() + ">>: the statement must select the mapped columns of '" +
                            m.table().name() + "' in order (" + std::to_string(m.columns().size()) + " columns, got " +
                            std::to_string(r.keys().size()) + ")");
    std::vector<std::shared_ptr<void>> out;
    std::vector<ValueView> row;
    detail::IdentityMap& map = impl_->map_of(&m);
    while (r.fetch_views(row)) out.push_back(impl_->load_row(m, map, row));
    if (m.has_relationships()) detail::apply_loaders(*this, m, out, {});
    return out;
}

Result Session::execute(const Executable& stmt, const std::vector<Params>& params) {
    impl_->check_usable();
    impl_->autoflush();
    return connection().execute(stmt, params);
}

NoAutoflush::NoAutoflush(std::weak_ptr<detail::SessionImpl> s) : s_(std::move(s)) {
    if (auto p = s_.lock()) ++p->no_autoflush;
}
NoAutoflush::~NoAutoflush() {
    if (auto p = s_.lock()) --p->no_autoflush;
}

// ---- savepoints -----------------------------------------------------------------------------

namespace detail {
SessionTransaction SessionImpl::begin_nested() {
    flush();
    SavepointFrame f;
    f.id = ++frame_seq;
    f.tx = connection().begin_nested();
    states.for_each([&](InstanceState& st) {
        Values v;
        st.mapper->read(st.obj.get(), v);
        f.entries.emplace(&st, FrameEntry{st.state, st.marked_deleted, st.new_in_tx, st.snapshot, std::move(v)});
    });
    std::uint64_t id = f.id;
    frames.push_back(std::move(f));
    return SessionTransaction(weak_from_this(), frames.size(), id);
}

void SessionImpl::release_frame(std::size_t depth) {
    flush();
    while (frames.size() > depth) {
        if (frames.back().tx.is_active()) frames.back().tx.commit();
        frames.pop_back();
    }
    SavepointFrame f = std::move(frames.back());
    frames.pop_back();
    f.tx.commit();
}

void SessionImpl::rollback_to_frame(std::size_t depth) {
    while (frames.size() > depth) frames.pop_back();
    SavepointFrame f = std::move(frames.back());
    frames.pop_back();
    if (f.tx.is_active()) f.tx.rollback();
    failed = false;
    failure.clear();
    std::vector<InstanceState*> added_since;
    states.for_each([&](InstanceState& st) {
        if (!f.entries.contains(&st)) added_since.push_back(&st);
    });
    for (InstanceState* st : added_since) {
        if (st->new_in_tx) forget_generated_key(st);
        untrack(st);
    }
    for (auto& [st, e] : f.entries) {
        identity_erase(st);
        st->mapper->write(st->obj.get(), e.values);
        st->state = e.state;
        st->marked_deleted = e.marked_deleted;
        st->new_in_tx = e.new_in_tx;
        st->snapshot = e.snapshot;
        st->expired = false;
    }
    for (auto& [st, e] : f.entries)
        if (st->state == ObjectState::persistent) identity_insert(st);
}
}  // namespace detail

SessionTransaction::~SessionTransaction() {
    if (!is_active()) return;
    try {
        rollback();
    } catch (...) {
    }
}
std::shared_ptr<detail::SessionImpl> SessionTransaction::live() const {
    auto s = s_.lock();
    if (s && depth_ >= 1 && s->frames.size() >= depth_ && s->frames[depth_ - 1].id == id_) return s;
    return nullptr;
}
bool SessionTransaction::is_active() const noexcept { return live() != nullptr; }
void SessionTransaction::commit() {
    auto s = live();
    if (!s) throw InvalidRequestError("This savepoint is inactive");
    s_.reset();
    s->release_frame(depth_);
}
void SessionTransaction::rollback() {
    auto s = live();
    if (!s) throw InvalidRequestError("This savepoint is inactive");
    s_.reset();
    s->rollback_to_frame(depth_);
}

// ---- sessionmaker ---------------------------------------------------------------------------

void sessionmaker::configure(Config c) {
    if (c.bind) bind_ = std::move(c.bind);
    if (c.autoflush) options_.autoflush = *c.autoflush;
    if (c.expire_on_commit) options_.expire_on_commit = *c.expire_on_commit;
}

Session sessionmaker::operator()() const {
    if (!bind_) throw InvalidRequestError("sessionmaker has no bind; call configure({.bind = engine}) first");
    return Session(bind_, options_);
}

// ---- run_transaction ------------------------------------------------------------------------

bool is_retryable(const DBAPIError& e) noexcept {
    return e.sqlstate() == "40001" || e.sqlstate() == "40P01";
}

namespace detail {
void retry_sleep(const RetryOptions& options, int attempt) {
    // Exponential backoff with full jitter: conflicting clients spread out instead of
    // colliding again in step.
    thread_local std::minstd_rand rng{std::random_device{}()};
    auto cap = options.initial_backoff;
    for (int i = 0; i < attempt && cap < options.max_backoff; ++i) cap *= 2;
    cap = std::min(cap, options.max_backoff);
    if (cap.count() <= 0) return;
    std::uniform_int_distribution<long long> pick(cap.count() / 2, cap.count());
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(rng)));
}
}  // namespace detail

}  // namespace athanor
