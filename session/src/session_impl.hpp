// Private to session/: the state behind Session — instance states, the identity map, the
// savepoint frames — shared by session.cpp (bookkeeping), session_flush.cpp (unit of work),
// session_query.cpp (loading) and session_bulk.cpp.
#pragma once

#include <athanor/engine/connection.hpp>
#include <athanor/session/query.hpp>
#include <athanor/session/session.hpp>

#include "snapshot.hpp"

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace athanor::detail {

using Values = std::vector<Value>;

struct InstanceState {
    std::shared_ptr<void> obj;
    const Mapper* mapper = nullptr;
    ObjectState state = ObjectState::pending;
    bool marked_deleted = false;  // delete_() called, DELETE not flushed yet
    bool expired = false;
    bool new_in_tx = false;       // INSERTed during the current transaction
    bool in_identity_map = false;
    std::uint64_t add_seq = 0;    // insertion order of pending objects
    Snapshot snapshot;            // column values as last loaded or flushed (the DB row)
    Snapshot committed;           // values at the start of the transaction (rollback target)

    /// Primary key values as known to the database (from the snapshot).
    std::span<const Value> key_span(std::vector<Value>& scratch) const;
};

std::size_t hash_view(const ValueView& v) noexcept;
std::size_t hash_key(std::span<const Value> key) noexcept;

/// The identity map of one mapper: an open-addressing set of states keyed by their snapshot's
/// primary key, looked up by a span of values (no key object, no allocation per entry).
/// A state's snapshot must not change while it is in the map (erase, update, insert again).
class IdentityMap {
public:
    InstanceState* find(std::span<const Value> key) const noexcept;
    void insert(InstanceState* s);
    void erase(InstanceState* s) noexcept;
    std::size_t size() const noexcept { return count_; }

private:
    static std::size_t hash_state(const InstanceState* s) noexcept;
    static bool key_equals(std::span<const Value> k, const InstanceState* s) noexcept;
    void grow();
    static InstanceState* tomb() noexcept { return reinterpret_cast<InstanceState*>(alignof(InstanceState)); }
    std::vector<InstanceState*> slots_;
    std::size_t count_ = 0;
    std::size_t used_ = 0;  // live + tombstones
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
    Transaction tx;
    std::unordered_map<InstanceState*, FrameEntry> entries;
};

struct SessionImpl {
    SessionImpl(std::shared_ptr<Engine> e, SessionOptions o) : engine(std::move(e)), options(o) {}

    std::shared_ptr<Engine> engine;
    SessionOptions options;
    std::optional<Connection> conn;
    std::unordered_map<const void*, InstanceState> states;  // node-based: states stay put
    std::unordered_map<const Mapper*, IdentityMap> identity;
    std::uint64_t add_counter = 0;
    bool failed = false;
    std::string failure;
    int no_autoflush = 0;
    bool flushing = false;
    std::vector<SavepointFrame> frames;
    mutable std::vector<std::pair<std::type_index, const Mapper*>> mapper_cache;
    mutable std::vector<ValueView> views;  // scratch for dirty checks

    // ---- helpers (session.cpp)
    void check_usable() const;
    Connection& connection();
    void autoflush();
    InstanceState* find(const void* obj) const;
    InstanceState& track(const Mapper& m, std::shared_ptr<void> obj, ObjectState st);
    void untrack(InstanceState* st);
    void forget_generated_key(InstanceState* st);
    void identity_insert(InstanceState* st);
    void identity_erase(InstanceState* st);
    bool has_changes(const InstanceState& st) const;
    /// Loads or refreshes from one row of the mapper's columns; returns the object. A new
    /// object's snapshot takes over `row` (left empty).
    std::shared_ptr<void> load_row(const Mapper& m, Values& row);
    void flush();
    void commit();
    void rollback();
    void rollback_to_frame(std::size_t depth);
    void release_frame(std::size_t depth);
    SessionTransaction begin_nested();
    void expunge_all();
};

/// "<User at 0x...>"
std::string describe(const Mapper& m, const void* obj);
/// "(1, 'a')"
std::string describe_key(std::span<const Value> key);

}  // namespace athanor::detail
