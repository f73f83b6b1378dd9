// Private to session/: the state behind Session — instance states, the identity map, the
// savepoint frames — shared by session.cpp (bookkeeping), session_flush.cpp (unit of work),
// session_query.cpp (loading) and session_bulk.cpp.
#pragma once

#include <athanor/engine/connection.hpp>
#include <athanor/core/detail/hot.hpp>
#include <athanor/session/query.hpp>
#include <athanor/session/session.hpp>

#include "snapshot.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace athanor::detail {

using Values = std::vector<Value>;

struct InstanceState {
    // 40 bytes: a session holds one per object, so every field counts.
    std::shared_ptr<void> obj;
    const Mapper* mapper = nullptr;
    Snapshot snapshot;            // column values as last loaded or flushed (the DB row)
    std::uint32_t add_seq = 0;    // insertion order of pending objects
    ObjectState state = ObjectState::pending;
    bool marked_deleted : 1 = false;  // delete_() called, DELETE not flushed yet
    bool expired : 1 = false;
    bool new_in_tx : 1 = false;       // INSERTed during the current transaction
    bool in_identity_map : 1 = false;
    bool changed_in_tx : 1 = false;   // its snapshot before this transaction is in committed_before
    bool indexed : 1 = false;         // in the StateTable's address index yet
    bool reattached : 1 = false;      // a detached object add()ed back: its row is UPDATEd in full
    // While in an identity map: the low 16 bits of its key's hash (the slot holds the high 16),
    // so the map rehashes, and erases from a table of up to 64Ki slots, without decoding the key.
    std::uint16_t key_hash_lo = 0;

    /// Primary key values as known to the database (from the snapshot).
    std::span<const Value> key_span(std::vector<Value>& scratch) const;
};
static_assert(sizeof(InstanceState) <= 40, "InstanceState is per object: keep it small");

std::size_t hash_view(const ValueView& v) noexcept;
std::size_t hash_key(std::span<const Value> key) noexcept;
std::size_t hash_key_of(std::span<const ValueView> key) noexcept;  // hash_key()'s other keys: call that
/// Spreads an integer key's bits (the identity map's hash of a one-integer key).
inline std::size_t fold_int(std::int64_t i) noexcept {
    auto u = static_cast<std::uint64_t>(i);
    return static_cast<std::size_t>(u ^ (u >> 16) ^ (u >> 32) ^ (u >> 48));
}
/// The identity map's hash of a key: one integer in line, the others by hash_key_of().
inline std::size_t hash_key(std::span<const ValueView> key) noexcept {
    if (key.size() == 1 && key[0].kind == Value::Kind::integer) [[likely]]
        return fold_int(key[0].i);
    return hash_key_of(key);
}

/// The identity map of one mapper: an open-addressing set of states keyed by their snapshot's
/// primary key, looked up by a span of values (no key object, no allocation per entry).
/// A state's primary key in its snapshot must not change while it is in the map (erase,
/// update, insert again): the map finds a state's slot by that key's hash.
class IdentityMap {
public:
    InstanceState* find(std::span<const Value> key) const noexcept;
    InstanceState* find(std::span<const ValueView> key) const noexcept;
    /// A single integer key (the common autoincrement id): no views, no general compare. On a
    /// miss `slot` is where the key would go (the first free slot of its probe), for insert_at()
    /// while mutations() is unchanged: get() looks a key up and loads its row with one probe.
    InstanceState* find_int(std::int64_t key, std::size_t* slot) const noexcept;
    InstanceState* find_int_walk(std::int64_t key, std::size_t* slot) const noexcept;  // find_int() past the home slot
    /// Counts the changes that can move or fill a slot (erase, growth, placing a state).
    std::uint32_t mutations() const noexcept { return mutations_; }
    /// With the key's hash already known (hash_key), to insert with it after a miss.
    InstanceState* find(std::span<const ValueView> key, std::size_t hash) const noexcept;
    /// find() that also returns where the key would go (growing the table first if an insert
    /// would), for insert_at() after a miss: one probe for a load of a new row.
    InstanceState* probe(std::span<const ValueView> key, std::size_t hash, std::size_t* slot);
    InstanceState* probe_walk(std::span<const ValueView> key, std::size_t h, std::size_t* slot);  // probe() past the home slot
    void insert_at(std::size_t slot, InstanceState* s, std::size_t hash);
    void insert(InstanceState* s);
    /// Insert with the key's hash already known (hash_key of the primary key values).
    void insert(InstanceState* s, std::size_t hash);
    void erase(InstanceState* s) noexcept;
    std::size_t size() const noexcept { return count_; }
    /// Room for `n` states without growing again (a load that knows roughly how many rows come).
    void reserve(std::size_t n);

private:
    static bool key_equals(std::span<const ValueView> k, const InstanceState* s) noexcept;
    void grow(std::size_t at_least = 0);
    void place(std::size_t i, InstanceState* s, std::size_t hash);
    /// At most 80% of the slots live or tombstones (linear probing, 16-bit tags).
    bool full_after_one() const noexcept { return (used_ + 1) * 5 > slots_.size() * 4; }
    static InstanceState* tomb() noexcept { return reinterpret_cast<InstanceState*>(alignof(InstanceState)); }
    // One word per slot: the state's address (48 bits, as x86-64 and AArch64 user space give
    // them) and 16 bits of its key's hash, compared before the state is read (no cache miss per
    // collision), in the 8 bytes a plain pointer takes.
    struct Slot {
        std::uintptr_t bits = 0;
        static constexpr std::uintptr_t kAddr = (std::uintptr_t{1} << 48) - 1;
        InstanceState* s() const noexcept { return reinterpret_cast<InstanceState*>(bits & kAddr); }
        static std::uint16_t tag_of(std::uint32_t h) noexcept { return static_cast<std::uint16_t>(h >> 16); }
        std::uint16_t tag() const noexcept { return static_cast<std::uint16_t>(bits >> 48); }
        static Slot make(InstanceState* s, std::uint32_t h) noexcept {
            return {reinterpret_cast<std::uintptr_t>(s) | (static_cast<std::uintptr_t>(tag_of(h)) << 48)};
        }
    };
    static_assert(sizeof(void*) == 8, "the identity map packs addresses into 48 bits");
    /// The 32 bits of the key's hash a slot was placed by: its tag and its state's low bits.
    static std::uint32_t hash_of(Slot sl) noexcept;
    std::vector<Slot> slots_;
    std::size_t count_ = 0;
    std::size_t used_ = 0;  // live + tombstones
    std::uint32_t mutations_ = 0;
};

/// Every tracked object's state: states live in chunks (stable addresses, no allocation per
/// object, freed slots reused) and are found by object address through an open-addressing
/// index, filled lazily (a query loading many objects does not index them until a lookup by
/// address needs it). Iteration visits live states in slot order.
class StateTable {
public:
    InstanceState* find(const void* obj) const;
    /// A fresh state for `obj` (which must not be tracked yet).
    InstanceState& emplace(const void* obj);
    /// Makes a state findable by its object (after emplace() and setting st.obj).
    void index(InstanceState* st) {
        // States of a load come from consecutive slots of one chunk: one run for them all.
        // (A run never leaves its chunk: it grows only by the slot emplace() just took from
        // the chunk the run is in.)
        if (st == fresh_ && !unindexed_.empty() && unindexed_.back().chunk == chunks_.size() &&
            unindexed_.back().first + unindexed_.back().count == st)
            ++unindexed_.back().count;
        else
            unindexed_.push_back({st, 1, st == fresh_ ? chunks_.size() : 0});
        if (++unindexed_count_ > 2 * count_ + 1024) index_pending();  // bound stale entries
    }
    void erase(InstanceState* st) noexcept;
    void clear() noexcept;
    std::size_t size() const noexcept { return count_; }

    /// Calls f on every live state. f may erase states, never add one. Stops at the last live
    /// state: a session holding a few objects in a large table scans few slots.
    template <class F>
    void for_each(F&& f) {
        all_of([&](InstanceState& st) {
            f(st);
            return true;
        });
    }

    /// Whether f(state) is true for every live state; stops at the first false (as for_each
    /// otherwise).
    template <class F>
    bool all_of(F&& f) {
        std::size_t left = count_;
        if (left == 0) return true;
        for (auto& chunk : chunks_)
            for (std::size_t i = 0; i < kChunk; ++i)
                if (chunk[i].mapper) {
                    if (!f(chunk[i])) return false;
                    if (--left == 0) return true;
                }
        return true;
    }

private:
    static constexpr std::size_t kChunk = 256;
    static std::size_t hash(const void* p) noexcept {
        return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ull);
    }
    static InstanceState* tomb() noexcept { return reinterpret_cast<InstanceState*>(alignof(InstanceState)); }
    void grow() const;
    void index_insert(InstanceState* st) const;
    void index_pending() const;
    std::vector<std::unique_ptr<InstanceState[]>> chunks_;
    std::vector<InstanceState*> free_;
    std::size_t next_ = kChunk;  // next unused slot in the last chunk
    // The index is filled on demand (find), so it is logically part of the table's state.
    mutable std::vector<InstanceState*> index_;
    struct Run {
        InstanceState* first;
        std::size_t count;
        std::size_t chunk;  // chunks_.size() when the run began in the newest chunk, else 0
    };
    InstanceState* fresh_ = nullptr;  // the last state emplace() took from the newest chunk
    mutable std::vector<Run> unindexed_;  // may hold freed or reused slots: skipped
    mutable std::size_t unindexed_count_ = 0;
    std::size_t count_ = 0;
    mutable std::size_t used_ = 0;
};

/// A session's scratch vector lent to one call (emptied), and handed back, emptied, when the
/// call ends either way: its capacity stays with the session instead of being freed per call
/// (up to kKeep elements; a larger one is freed). Besides the malloc it saves, this keeps
/// glibc's heap as the program left it: a request of 1 KiB or more consolidates the freed
/// small blocks (a batch of objects just let go), and the program's next batch then comes from
/// the slow path of malloc instead of those blocks.
template <class T>
struct Borrowed {
    static constexpr std::size_t kKeep = std::size_t{1} << 16;
    explicit Borrowed(std::vector<T>& home) : home_(home), v(std::move(home)) { v.clear(); }
    ~Borrowed() {
        v.clear();
        if (v.capacity() <= kKeep) home_ = std::move(v);
    }
    Borrowed(const Borrowed&) = delete;
    Borrowed& operator=(const Borrowed&) = delete;

private:
    std::vector<T>& home_;

public:
    std::vector<T> v;
};

/// What a savepoint restores: each tracked object's state when the savepoint began.
struct FrameEntry {
    ObjectState state;
    bool marked_deleted;
    bool new_in_tx;
    Snapshot snapshot;
    Values values;  // the object's member values
};
struct SavepointFrame {
    std::uint64_t id = 0;  // tells a stale SessionTransaction from a new one at the same depth
    Transaction tx;
    std::unordered_map<InstanceState*, FrameEntry> entries;
};

/// A mapper the session has used, with its registry's life token (see check_mappers()).
struct KnownMapper {
    std::type_index type;
    const Mapper* mapper;
    bool dynamic;
    std::shared_ptr<const std::atomic<bool>> registry_alive;
};

/// Objects that left a session while the program still held them (close(), expunge()): add()
/// attaches such an object to a new session as persistent instead of INSERTing it again.
/// Process-wide, weak (an entry dies with its object), internally synchronized.
void note_detached(const std::shared_ptr<void>& obj);
void note_detached(std::span<const std::shared_ptr<void>> objs);
/// Whether `obj` (this very object, not a new one at the same address) was detached; forgets it.
bool take_detached(const std::shared_ptr<void>& obj);
/// The same for an object of mapper m: an object with relationships carries the mark in its
/// first relationship member's instrumentation (exact, no global entry, nothing retained).
void note_detached(const Mapper& m, const std::shared_ptr<void>& obj);
bool take_detached(const Mapper& m, const std::shared_ptr<void>& obj);

/// For each bind slot of the session's own statements (get()'s, a filter_by() lookup's), in
/// placeholder order: k when the slot is the parameter named with a two-letter prefix and k
/// ("pk0", "eq1"), -1 for a value the statement carries (LIMIT). Read once when the statement
/// is prepared, so an execution binds by position.
std::vector<int> bind_positions(const Cursor& c);

struct FlushScratch;  // session_flush.cpp
struct FlushScratchDelete {
    void operator()(FlushScratch* p) const noexcept;
};

struct SessionImpl : std::enable_shared_from_this<SessionImpl> {
    std::weak_ptr<void> self_weak;  // handed to instrumented members (set on first use)
    SessionImpl(std::shared_ptr<Engine> e, SessionOptions o);
    ~SessionImpl();
    SessionImpl(const SessionImpl&) = delete;
    SessionImpl& operator=(const SessionImpl&) = delete;

    std::uint64_t id = 0;              // SQLAlchemy's session hash_key, for messages
    std::thread::id thread;            // where it was created (add() checks same-thread sessions)
    /// Another live session of this thread that tracks `obj`, or nullptr.
    const SessionImpl* other_holder(const void* obj) const;
    /// Records the persistent objects the program still holds as detached (see note_detached).
    void note_held_detached();
    /// expunge_all(), after note_held_detached() when `note_held`: close() and expunge_all().
    /// Without relationships in play the two are one pass over the states, each object's
    /// reference count read and dropped together.
    void release_all(bool note_held);

    std::shared_ptr<Engine> engine;
    SessionOptions options;
    std::optional<Connection> conn;
    /// get()'s prepared statement per mapper on `conn`, with the key position of each bind
    /// slot: kept for the session's life (cleared when conn closes), so a get() that misses
    /// the identity map costs one execution, not a statement lookup and a Cursor.
    struct GetCursor {
        Cursor cursor;
        std::vector<int> slots;  // bind_positions(cursor): every slot is a key value
    };
    std::unordered_map<const Mapper*, GetCursor> get_cursors;
    /// get_cursors[m] for the mapper asked for last (a loop of get() asks for one): elements of
    /// an unordered_map keep their address. Reset with get_cursors.clear().
    const Mapper* last_get_mapper = nullptr;
    GetCursor* last_get = nullptr;
    /// The bound values' pointers of get() and query_eq(): each sizes it to its statement's
    /// placeholders and writes every one before executing.
    std::vector<const Value*> get_ptrs;
    /// Query's prepared statements for filter_by() equalities (detail::query_eq): one per
    /// mapper, columns and LIMIT 1 or not, on `conn` (cleared with get_cursors); slots[i] is
    /// the term bound to placeholder i, or -1 for a value of the statement (LIMIT).
    struct EqCursor {
        const Mapper* mapper = nullptr;
        std::vector<std::size_t> columns;
        bool first = false;
        Cursor cursor;
        std::vector<int> slots;
    };
    std::vector<EqCursor> eq_cursors;
    std::vector<ValueView> eq_row;
    std::unique_ptr<FlushScratch, FlushScratchDelete> flush_scratch;  // flush()'s buffers, kept
    std::vector<InstanceState*> release_scratch;  // flush()'s list of objects to let go
    std::vector<InstanceState*> sweep_scratch;    // sweep()'s
    /// Value buffers of flushed rows, kept for the next flush (bounded).
    std::vector<Values> spare_values_;
    Values spare_values() {
        if (spare_values_.empty()) return {};
        Values v = std::move(spare_values_.back());
        spare_values_.pop_back();
        return v;
    }
    void recycle_values(Values&& v) noexcept {
        constexpr std::size_t kMaxSpare = 1024;
        if (v.empty() || spare_values_.size() >= kMaxSpare) return;
        try {
            spare_values_.push_back(std::move(v));
        } catch (...) {
        }
    }  // scratch row of get() and query_eq() (not reentrant: a
                                    // load runs no query of its own before it is done with it)
    SnapshotArena arena;  // before everything that holds snapshots: destroyed after them
    StateTable states;
    std::unordered_map<const Mapper*, IdentityMap> identity;
    /// identity[m], remembering the last mapper asked for (a run of gets or a flush of one
    /// class looks the same map up per object). Reset with identity.clear().
    IdentityMap& map_of(const Mapper* m) {
        if (m != last_map_mapper_) [[unlikely]]
            return map_of_other(m);
        return *last_map_;
    }
    /// map_of() of another mapper than the last (the hash map's lookup, out of line).
    [[gnu::noinline]] IdentityMap& map_of_other(const Mapper* m) {
        last_map_ = &identity[m];
        last_map_mapper_ = m;
        return *last_map_;
    }
    const Mapper* last_map_mapper_ = nullptr;
    IdentityMap* last_map_ = nullptr;
    std::uint32_t add_counter = 0;
    /// The snapshots objects had when the transaction began, for those whose snapshot has been
    /// replaced since (rollback restores them; commit forgets them).
    std::unordered_map<InstanceState*, Snapshot> committed_before;
    bool failed = false;
    std::string failure;
    int no_autoflush = 0;
    bool flushing = false;
    std::vector<SavepointFrame> frames;
    std::uint64_t frame_seq = 0;
    mutable std::vector<KnownMapper> mapper_cache;  // every mapper of a tracked object is here
    mutable std::type_index last_type{typeid(void)};  // Session::mapper_by_type's last answer
    mutable const Mapper* last_type_mapper = nullptr;
    mutable std::uint64_t registries_checked = ~std::uint64_t{0};  // Registry::destroyed_count() seen alive

    // ---- helpers (session.cpp)
    /// PendingRollbackError after a failed flush; InvalidRequestError when a registry whose
    /// mappers this session used has been destroyed.
    /// In line: every lookup runs it (a load and two compares); what is rare is out of line.
    void check_usable() const {
        check_mappers();
        if (failed) [[unlikely]]
            raise_pending_rollback();
    }
    /// InvalidRequestError when a registry whose mappers this session used has been destroyed.
    void check_mappers() const {
        if (Registry::destroyed_count() != registries_checked) [[unlikely]]
            check_registries();
    }
    void check_registries() const;
    [[noreturn]] void raise_pending_rollback() const;
    bool mappers_alive() const noexcept;
    const Mapper& remember(std::type_index type, const Mapper& m, const Registry& r) const;
    /// The session's connection (opened on first use), after check_usable().
    Connection& connection() {
        check_usable();
        return opened();
    }
    /// The connection, opened on first use, without check_usable() (for a caller that ran it).
    Connection& opened() {
        if (!conn) [[unlikely]]
            open_connection();
        return *conn;
    }
    void open_connection();
    /// flush() unless autoflush is off, a no_autoflush guard is alive or a flush is running.
    void autoflush() {
        if (options.autoflush && no_autoflush == 0 && !flushing) [[likely]]
            flush();
    }
    InstanceState* find(const void* obj) const;
    InstanceState& track(const Mapper& m, std::shared_ptr<void> obj, ObjectState st);
    void untrack(InstanceState* st);
    /// Lets go of clean persistent objects nobody outside the session holds, and re-packs the
    /// snapshots when a few live ones pin many arena blocks. Runs when the state table has
    /// doubled since the last sweep (amortized O(1) per tracked object), outside flush too.
    void sweep();
    std::size_t sweep_at = 256;
    /// A clean persistent object only the session holds, which it may let go of at any time
    /// (the identity map is weak, as SQLAlchemy's is).
    bool droppable(const InstanceState& st) const {
        return st.state == ObjectState::persistent && !st.marked_deleted && !st.reattached && st.obj.use_count() == 1 &&
               !has_changes(st);
    }
    /// The arena holds more than twice what the live snapshots need (sweep() compacts it).
    bool arena_sparse() const noexcept {
        // The first test spares the division of the estimate while the arena is small (a loop
        // of get() that keeps nothing holds one or two blocks).
        constexpr std::size_t kSlack = 256u << 10;
        return arena.bytes_held() > kSlack && arena.bytes_held() > 2 * arena.estimated_live_bytes() + kSlack;
    }
    /// The object loaded last (nullptr after expunge_all()): a loop of get() whose
    /// objects the program drops lets each one go when it loads the next, so its allocations
    /// are reused at once instead of in the sweep's batches.
    InstanceState* last_loaded = nullptr;
    /// Lets last_loaded go if the program let go of it and it is clean (as SQLAlchemy's weak
    /// identity map does when its last reference goes), before the next get() or query: a
    /// loop of lookups keeps one object, and the autoflush before a query finds none to look at.
    void drop_last_loaded();  // last_loaded is not null
    /// While a query's rows are being loaded (their objects go to the caller), there is nothing
    /// to sweep: the objects just loaded are all held.
    int loading = 0;
    struct Loading {
        SessionImpl& s;
        explicit Loading(SessionImpl& x) : s(x) { ++s.loading; }
        ~Loading() { --s.loading; }
        Loading(const Loading&) = delete;
        Loading& operator=(const Loading&) = delete;
    };
    void forget_generated_key(InstanceState* st);
    /// Replaces a persistent object's snapshot, remembering the transaction-start one.
    void replace_snapshot(InstanceState* st, Snapshot s);
    /// The values to restore on rollback.
    const Snapshot& committed_of(InstanceState* st) const;
    void identity_insert(InstanceState* st);
    void identity_erase(InstanceState* st);
    bool has_changes(const InstanceState& st) const;
    /// Loads or refreshes from one row of the mapper's columns; returns the object.
    std::shared_ptr<void> load_row(const Mapper& m, const Values& row);
    /// Where get() found its integer key missing from `map` (IdentityMap::find_int()), valid
    /// while the map's mutations() are `mutations`.
    struct MissHint {
        std::int64_t key;
        std::size_t slot;
        std::uint32_t mutations;
    };
    std::shared_ptr<void> load_row(const Mapper& m, IdentityMap& map, std::span<const ValueView> row,
                                   const MissHint* hint = nullptr);
    /// load_row() of an expired object's row.
    void reload_expired(const Mapper& m, InstanceState* st, std::span<const ValueView> row);
    /// untrack() of a state changed in this transaction or inside a savepoint.
    void untrack_rare(InstanceState* st);
    std::vector<ValueView> key_views;  // scratch for load_row
    /// get(): the identity map (reloading an expired object), else one SELECT by key.
    std::shared_ptr<void> get(const Mapper& m, std::span<const Value> pk);
    /// get()'s statement for m, prepared on the first get() of m and kept in get_cursors.
    GetCursor& add_get_cursor(const Mapper& m, Connection& c);
    /// Points last_get at m's statement (made on first use): get() for another class than the last one.
    void switch_get_cursor(const Mapper& m, Connection& c);

    // ---- relationships (session_relations.cpp)
    enum class Instrument { fresh, loaded, keep };
    /// Gives the object's Ref/Collection members their session hooks; `loaded` marks them
    /// unloaded (lazy), `fresh` and `keep` leave what the program set.
    void instrument(InstanceState& st, Instrument how);
    /// save-update cascade and back_populates for an object just added: related objects not
    /// in the session become pending, the other side of each pair is filled in.
    void cascade_add(InstanceState& st);
    /// Expiry of an object's relationships: they load again on the next access.
    void expire_relations(InstanceState& st);
    /// A collection or reference of the object was changed since the last flush (it is dirty,
    /// as SQLAlchemy counts a changed collection as a change of its owner).
    bool relations_modified(const InstanceState& st) const;
    void clear_relations_modified();
    // Adjacency lists (a mapper related to itself), for the flush.
    bool self_referential(const Mapper& m) const;
    /// Each tracked object of m -> its parent along m's relationships to itself.
    std::unordered_map<const void*, std::shared_ptr<void>> self_parents(const Mapper& m);
    /// The order to INSERT `sts` in: by level (parents first; parents not in `sts` are already
    /// rows). CircularDependencyError names the rows of a cycle.
    std::vector<std::size_t> order_by_level(const Mapper& m, const std::vector<InstanceState*>& sts,
                                            const std::unordered_map<const void*, std::shared_ptr<void>>& parent_of);
    void copy_parent_key(const Mapper& m, void* child, const void* parent);
    /// Many-to-many: INSERTs and DELETEs the association rows of changed collections (after
    /// both sides' rows are written, before rows are deleted), one batched statement each.
    void write_associations();
    /// Both sides of a many-to-many pair hold each other strongly while a session tracks them;
    /// when the session lets go of an object, its such collections are released (they load
    /// again in a session), so the pair is not a shared_ptr cycle.
    void release_pairs(InstanceState& st);
    /// expunge cascade: the loaded related objects leave the session with `st`.
    void cascade_expunge(InstanceState& st);
    /// refresh-expire cascade: the loaded related objects are expired with `st` (refresh:
    /// their unflushed changes are discarded too, and the next access reloads them).
    void cascade_refresh_expire(InstanceState& st, bool refresh);
    /// Before a flush: delete cascades and orphans (delete-orphan, or the foreign key nulled).
    void cascade_deletes();
    /// During a flush, before mapper m's rows are written: copies parents' keys into the
    /// foreign key members of m's objects (their parents were written before them).
    /// (nullptr: for every mapper, before the flush looks for changes.)
    void sync_foreign_keys(const Mapper* m);
    // post_update(): foreign keys written by a second UPDATE after the rows exist.
    struct PostUpdate {
        InstanceState* st;                   // the row holding the foreign key
        const RelationshipProperty* r;       // its referring columns are st's
        std::shared_ptr<void> target;        // the referred object (null: the key becomes NULL)
    };
    struct ColumnUndo {
        InstanceState* st;
        std::size_t index;
        Value old;
    };
    /// Rows of two mappers that need each other's keys first (a cycle among the tables that no
    /// post_update breaks): CircularDependencyError naming both, before anything is written.
    void check_cycles(const std::vector<const Mapper*>& order, const std::vector<InstanceState*>& pending);
    /// The post_update foreign keys to write: new rows, and changed references.
    std::vector<PostUpdate> gather_post_updates();
    /// Before the INSERTs: new rows' post_update foreign keys are NULL (the target may not
    /// exist yet).
    void null_post_update_keys(const std::vector<PostUpdate>& ups, std::vector<ColumnUndo>& undo);
    /// After the rows are written: UPDATE ... SET fk = the target's key where it differs.
    void run_post_updates(const std::vector<PostUpdate>& ups, std::vector<ColumnUndo>& undo,
                          std::vector<InstanceState*>& touched);
    /// Before the DELETEs: rows being deleted let go of their post_update references
    /// (UPDATE ... SET fk = NULL), so rows pointing at each other can be deleted.
    void null_post_updates_before_delete(const std::map<const Mapper*, std::vector<InstanceState*>>& deletes);
    struct Removal {
        std::shared_ptr<void> child;
        std::shared_ptr<void> parent;
        const RelationshipProperty* prop;
    };
    std::vector<Removal> removals;  // children taken out of collections since the last flush
    bool any_relationships = false;  // a mapper with relationships was used
    bool flush_any_deleted = true;   // set by sync_foreign_keys(nullptr) for the flush
    bool any_post_update = false;    // a mapper with a post_update relationship was used
    void flush();
    /// flush() once its look found something to write (or relationships to sync first).
    void flush_changes();
    void flush_tracked();  // flush() past its first checks
    void commit();
    void rollback();
    void rollback_to_frame(std::size_t depth);
    void release_frame(std::size_t depth);
    SessionTransaction begin_nested();
    void expunge_all();
};

/// Sets the other side of a back_populates pair in memory (owner added to / removed from
/// child's side), without hooks: no cascade, no recursion.
void set_back(const RelationshipProperty& r, void* owner, const std::shared_ptr<void>& owner_ptr,
              const std::shared_ptr<void>& child, bool added);

/// The k-th bound primary key value of the flush's UPDATE / DELETE statements ("\x01pk<k>":
/// no column is called that, so it never clashes with a SET parameter).
std::string key_bind(std::size_t k);
/// Each primary key column of m = bindparam(key_bind(k)), AND-ed.
ColumnElement primary_key_clause(const Mapper& m);

/// "<User at 0x...>"
std::string describe(const Mapper& m, const void* obj);
/// "(1, 'a')"
std::string describe_key(std::span<const Value> key);

}  // namespace athanor::detail
