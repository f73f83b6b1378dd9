// Private to session/: the state behind Session — instance states, the identity map, the
// savepoint frames — shared by session.cpp (bookkeeping), session_flush.cpp (unit of work),
// session_query.cpp (loading) and session_bulk.cpp.
#pragma once

#include <athanor/engine/connection.hpp>
#include <athanor/session/query.hpp>
#include <athanor/session/session.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace athanor::detail {

using Values = std::vector<Value>;
using SharedValues = std::shared_ptr<const Values>;

struct InstanceState {
    std::shared_ptr<void> obj;
    const Mapper* mapper = nullptr;
    ObjectState state = ObjectState::pending;
    bool marked_deleted = false;  // delete_() called, DELETE not flushed yet
    bool expired = false;
    bool new_in_tx = false;       // INSERTed during the current transaction
    bool in_identity_map = false;
    std::uint64_t add_seq = 0;    // insertion order of pending objects
    SharedValues snapshot;        // column values as last loaded or flushed (the DB row)
    SharedValues committed;       // values at the start of the transaction (rollback target)

    /// Primary key values as known to the database (from the snapshot).
    std::span<const Value> key_span(std::vector<Value>& scratch) const;
};

std::size_t hash_key(std::span<const Value> key) noexcept;

/// The identity map of one mapper: states keyed by their snapshot's primary key values, looked
/// up by a span of values without building a key object.
struct IdentityMap {
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::span<const Value> k) const noexcept { return hash_key(k); }
        std::size_t operator()(const InstanceState* s) const noexcept;
    };
    struct Eq {
        using is_transparent = void;
        bool operator()(const InstanceState* a, const InstanceState* b) const noexcept { return a == b; }
        bool operator()(std::span<const Value> k, const InstanceState* s) const noexcept;
        bool operator()(const InstanceState* s, std::span<const Value> k) const noexcept { return (*this)(k, s); }
    };
    std::unordered_set<InstanceState*, Hash, Eq> set;

    InstanceState* find(std::span<const Value> key) const;
};

/// What a savepoint restores: each tracked object's state when the savepoint began.
struct FrameEntry {
    ObjectState state;
    bool marked_deleted;
    bool new_in_tx;
    SharedValues snapshot;
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
    std::unordered_map<const void*, std::unique_ptr<InstanceState>> states;
    std::unordered_map<const Mapper*, IdentityMap> identity;
    std::uint64_t add_counter = 0;
    bool failed = false;
    std::string failure;
    int no_autoflush = 0;
    bool flushing = false;
    std::vector<SavepointFrame> frames;
    mutable std::vector<std::pair<std::type_index, const Mapper*>> mapper_cache;

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
