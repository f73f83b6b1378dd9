// Session: the ORM's unit of work and identity map, after SQLAlchemy's Session.
//
// Objects are std::shared_ptr<T> of mapped classes (or sa::Record). The session holds strong
// references to new, dirty and deleted objects, so unflushed work is never lost when a caller
// drops a handle. A clean persistent object that nothing outside the session holds any more is
// let go at the next flush (SQLAlchemy's identity map is weak in the same way): while the
// program holds an object, queries and get() return that same object; once it has dropped it,
// they load a new one. expunge(), expunge_all() and close() let go of objects explicitly.
//
// C++ has no attribute interception, so two rules replace SQLAlchemy's lazy reloads:
// - Dirty tracking compares each persistent object's current column values with the snapshot
//   taken when it was loaded or last flushed (dirty(), is_modified(), flush()).
// - An expired object (expire(), expire_all(), commit() with expire_on_commit) keeps its member
//   values until the next time the database is read for it: a query whose rows include it, a
//   refresh(), or merge(). Those overwrite it with the row. get() on an expired object returns
//   it without SQL, as an identity-map hit. Objects that are not expired are never overwritten
//   by a query, so unflushed changes survive autoflush-free reads.
//
// Integer autoincrement primary keys: a value of 0 (or NULL) means "not assigned yet"; flush
// lets the database generate the key and writes it back into the object.
//
// Errors: a flush that fails (any exception, from the database or from a mapper event) rolls
// back the transaction and leaves the session in the failed state: every operation raises
// PendingRollbackError until rollback(), which expunges the new objects and restores the
// persistent ones to their last committed values. Inside begin_nested() only the savepoint is
// rolled back: the session is failed until that savepoint's rollback() (or the session's), and
// the outer transaction's work then carries on, as in SQLAlchemy.
//
// A Session belongs to one thread.
#pragma once

#include <athanor/core/exc.hpp>
#include <athanor/engine/engine.hpp>
#include <athanor/mapping/registry.hpp>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <optional>
#include <span>
#include <typeindex>
#include <vector>

namespace athanor {

namespace detail {
template <class V>
struct is_shared_ptr : std::false_type {};
template <class T>
struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};
}  // namespace detail

template <class T>
class Query;

namespace detail {
struct SessionImpl;
}

enum class ObjectState : std::uint8_t { transient, pending, persistent, deleted, detached };

/// Options of a Session (SQLAlchemy's Session(autoflush=..., expire_on_commit=...)).
struct SessionOptions {
    bool autoflush = true;
    bool expire_on_commit = true;
};

/// A set of tracked objects (session.dirty(), new_objects(), deleted()).
class IdentitySet {
public:
    template <class T>
    bool contains(const std::shared_ptr<T>& obj) const {
        for (const auto& o : items_)
            if (o.get() == static_cast<const void*>(obj.get())) return true;
        return false;
    }
    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }
    auto begin() const { return items_.begin(); }
    auto end() const { return items_.end(); }
    void add(std::shared_ptr<void> o) { items_.push_back(std::move(o)); }

private:
    std::vector<std::shared_ptr<void>> items_;
};

/// A SAVEPOINT of the session (begin_nested()). RAII: rolls back unless committed.
/// It refers to its Session weakly: once the savepoint ended (committed, rolled back, or gone
/// with an enclosing one) or the Session was destroyed, it is inactive, and commit()/rollback()
/// raise InvalidRequestError; the destructor then does nothing.
class SessionTransaction {
public:
    SessionTransaction() = default;
    SessionTransaction(std::weak_ptr<detail::SessionImpl> s, std::size_t depth, std::uint64_t id)
        : s_(std::move(s)), depth_(depth), id_(id) {}
    SessionTransaction(SessionTransaction&& o) noexcept
        : s_(std::move(o.s_)), depth_(o.depth_), id_(o.id_) {
        o.s_.reset();
    }
    SessionTransaction& operator=(SessionTransaction&&) = delete;
    ~SessionTransaction();
    /// Flushes and RELEASEs the savepoint.
    void commit();
    /// ROLLBACK TO the savepoint; objects changed since are restored, objects added since are
    /// expunged.
    void rollback();
    bool is_active() const noexcept;

private:
    std::shared_ptr<detail::SessionImpl> live() const;
    std::weak_ptr<detail::SessionImpl> s_;
    std::size_t depth_ = 0;
    std::uint64_t id_ = 0;
};

/// While alive, queries do not autoflush (SQLAlchemy's session.no_autoflush). Safe to outlive
/// its Session (it then does nothing).
class NoAutoflush {
public:
    explicit NoAutoflush(std::weak_ptr<detail::SessionImpl> s);
    NoAutoflush(NoAutoflush&& o) noexcept : s_(std::move(o.s_)) { o.s_.reset(); }
    NoAutoflush& operator=(NoAutoflush&&) = delete;
    ~NoAutoflush();

private:
    std::weak_ptr<detail::SessionImpl> s_;
};

class Session {
public:
    explicit Session(std::shared_ptr<Engine> bind, SessionOptions options = {});
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    /// close(): rolls back what was not committed.
    ~Session();

    // ---- adding and removing
    template <class T>
    void add(const std::shared_ptr<T>& obj) {
        add_impl(mapper_for(obj), std::static_pointer_cast<void>(std::const_pointer_cast<std::remove_const_t<T>>(obj)));
    }
    /// The same for a pointer handed over (`s.add(std::make_shared<T>(...))`): when it was the
    /// only reference, the object cannot be in this session or another one (sessions hold
    /// their objects), so add() skips looking it up.
    template <class T>
    void add(std::shared_ptr<T>&& obj) {
        const Mapper& m = mapper_for(obj);
        add_impl(m, std::static_pointer_cast<void>(std::const_pointer_cast<std::remove_const_t<T>>(std::move(obj))));
    }
    template <class T>
    void add_all(std::initializer_list<std::shared_ptr<T>> objs) {
        for (const auto& o : objs) add(o);
    }
    template <class T>
    void add_all(const std::vector<std::shared_ptr<T>>& objs) {
        for (const auto& o : objs) add(o);
    }
    /// Marks a persistent object for DELETE at the next flush (a pending one is just expunged).
    template <class T>
    void delete_(const std::shared_ptr<T>& obj) {
        delete_impl(mapper_for(obj), obj.get());
    }
    template <class T>
    void expunge(const std::shared_ptr<T>& obj) {
        expunge_impl(obj.get());
    }
    void expunge_all();
    /// Rolls back and expunges everything; the session can be used again.
    void close();

    // ---- reading
    /// The object with this primary key: from the identity map without SQL, else loaded; null
    /// when there is no such row. A composite key takes its values in primary key order.
    template <class T>
    std::shared_ptr<T> get(const Value& pk) {
        return std::static_pointer_cast<T>(get_impl(mapper_of<T>(), std::span<const Value>(&pk, 1)));
    }
    template <class T>
    std::shared_ptr<T> get(const std::vector<Value>& pk) {
        return std::static_pointer_cast<T>(get_impl(mapper_of<T>(), pk));
    }
    template <class T>
    Query<T> query();
    /// Queries of dynamic Records name their table.
    template <class T>
        requires std::is_same_v<T, Record>
    Query<T> query(const Table& table);

    /// Copies the state of `obj` onto the persistent instance with the same primary key (found
    /// in the identity map or loaded; a new pending one if there is none) and returns it.
    template <class T>
    std::shared_ptr<T> merge(const std::shared_ptr<T>& obj) {
        return std::static_pointer_cast<T>(merge_impl(mapper_for(obj), obj.get()));
    }
    /// Reloads the object from the database now (ObjectDeletedError if its row is gone).
    template <class T>
    void refresh(const std::shared_ptr<T>& obj) {
        refresh_impl(mapper_for(obj), obj.get());
    }
    template <class T>
    void expire(const std::shared_ptr<T>& obj) {
        expire_impl(obj.get());
    }
    void expire_all();

    // ---- state
    /// pending / persistent / deleted for objects of this session; for others, detached when
    /// every primary key column is assigned (the object has a database identity), else transient.
    template <class T>
    ObjectState state_of(const std::shared_ptr<T>& obj) const {
        return state_impl(mapper_for(obj), obj.get());
    }
    template <class T>
    bool is_modified(const std::shared_ptr<T>& obj) const {
        return modified_impl(obj.get());
    }
    /// Persistent objects whose column values differ from their snapshot.
    IdentitySet dirty() const;
    /// Pending objects (SQLAlchemy's session.new).
    IdentitySet new_objects() const;
    /// Objects marked for deletion, not yet flushed.
    IdentitySet deleted() const;
    bool contains(const void* obj) const noexcept;

    // ---- unit of work and transactions
    void flush();
    void commit();
    void rollback();
    SessionTransaction begin_nested();
    NoAutoflush no_autoflush();
    bool in_transaction() const noexcept;
    /// The session's connection (begins the session's transaction on first use).
    Connection& connection();
    /// Runs any Core statement in the session's transaction, after an autoflush (so a count or
    /// a SELECT sees pending objects): SQLAlchemy's session.execute().
    Result execute(const Executable& stmt, const Params& params = {});
    Result execute(const Executable& stmt, const std::vector<Params>& params);
    /// First column of every row of execute(stmt). With V = std::shared_ptr<T> of a mapped T,
    /// the rows are T's (a SELECT of its mapped columns, in order, such as a WriteOnly
    /// collection's select()), returned as objects through the identity map (SQLAlchemy's
    /// session.scalars(select(User))).
    template <class V>
    std::vector<V> scalars(const Executable& stmt, const Params& params = {}) {
        if constexpr (detail::is_shared_ptr<V>::value) {
            using T = typename V::element_type;
            auto objs = load_objects(mapper_of<T>(), stmt, params);
            std::vector<V> out;
            out.reserve(objs.size());
            for (auto& o : objs) out.push_back(std::static_pointer_cast<T>(std::move(o)));
            return out;
        } else {
            return execute(stmt, params).template scalars<V>();
        }
    }
    /// First column of the first row; with V = std::optional<...>, nullopt when there is none
    /// (otherwise NoResultFound).
    template <class V>
    V scalar(const Executable& stmt, const Params& params = {}) {
        return execute(stmt, params).template scalar<V>();
    }
    const std::shared_ptr<Engine>& bind() const noexcept;

    // ---- bulk operations (no identity map, no events)
    template <class T>
    void bulk_insert_mappings(const std::vector<Params>& rows, bool return_defaults = false) {
        bulk_insert_impl(mapper_of<T>(), rows, return_defaults);
    }
    template <class T>
    void bulk_update_mappings(const std::vector<Params>& rows) {
        bulk_update_impl(mapper_of<T>(), rows);
    }
    template <class T>
    void bulk_save_objects(const std::vector<std::shared_ptr<T>>& objects) {
        std::vector<void*> raw;
        raw.reserve(objects.size());
        for (const auto& o : objects) raw.push_back(o.get());
        bulk_save_impl(objects.empty() ? nullptr : &mapper_for(objects.front()), raw);
    }

    /// The mapper of T (searched in every Registry); UnmappedClassError if none.
    template <class T>
    const Mapper& mapper_of() const {
        return mapper_by_type(std::type_index(typeid(T)));
    }
    detail::SessionImpl& impl() const noexcept { return *impl_; }

private:
    template <class T>
    const Mapper& mapper_for(const std::shared_ptr<T>& obj) const {
        if (!obj) throw ArgumentError("a null object was passed to the Session");
        if constexpr (std::is_same_v<std::remove_const_t<T>, Record>) return dynamic_mapper(obj->table());
        else return mapper_of<std::remove_const_t<T>>();
    }
    const Mapper& mapper_by_type(std::type_index t) const;
    const Mapper& mapper_by_type_slow(std::type_index t) const;
    const Mapper& dynamic_mapper(const Table& t) const;

    void add_impl(const Mapper& m, std::shared_ptr<void> obj);
    void delete_impl(const Mapper& m, const void* obj);
    void expunge_impl(const void* obj);
    std::shared_ptr<void> get_impl(const Mapper& m, std::span<const Value> pk);
    std::shared_ptr<void> merge_impl(const Mapper& m, const void* obj);
    std::vector<std::shared_ptr<void>> load_objects(const Mapper& m, const Executable& stmt, const Params& params);
    void refresh_impl(const Mapper& m, const void* obj);
    void expire_impl(const void* obj);
    ObjectState state_impl(const Mapper& m, const void* obj) const;
    bool modified_impl(const void* obj) const;
    void bulk_insert_impl(const Mapper& m, const std::vector<Params>& rows, bool return_defaults);
    void bulk_update_impl(const Mapper& m, const std::vector<Params>& rows);
    void bulk_save_impl(const Mapper* m, const std::vector<void*>& objects);

    std::shared_ptr<detail::SessionImpl> impl_;  // shared only with guards (weakly)
};

/// sessionmaker(): a Session factory, configurable before the engine exists.
class sessionmaker {
public:
    struct Config {
        std::shared_ptr<Engine> bind{};
        std::optional<bool> autoflush{};
        std::optional<bool> expire_on_commit{};
    };
    sessionmaker() = default;
    explicit sessionmaker(Config c) { configure(std::move(c)); }
    /// Sets the given keys (SQLAlchemy's Session.configure(bind=engine)).
    void configure(Config c);
    /// A new Session; InvalidRequestError when no bind was configured.
    Session operator()() const;

private:
    std::shared_ptr<Engine> bind_;
    SessionOptions options_;
};

/// How run_transaction retries: up to max_retries more attempts after the first, sleeping
/// initial_backoff, then twice as long each time (up to max_backoff), with jitter.
struct RetryOptions {
    int max_retries = 10;
    std::chrono::milliseconds initial_backoff{10};
    std::chrono::milliseconds max_backoff{1000};
};

/// Whether a database error is worth running the whole transaction again: a serialization
/// failure (SQLSTATE 40001, what SERIALIZABLE and CockroachDB raise when transactions
/// conflict) or a deadlock (40P01).
bool is_retryable(const DBAPIError& e) noexcept;

namespace detail {
void retry_sleep(const RetryOptions& options, int attempt);
}

/// Runs `fn(session)` in a new Session from `factory` and commits; when the database reports a
/// serialization failure or deadlock (in fn, its flushes or the commit), rolls back and runs it
/// again in a fresh Session, with backoff, up to options.max_retries times, then rethrows the
/// last error. Any other error is rethrown at once, after rollback. Returns what fn returns.
/// fn must be safe to run more than once (read what it needs inside; no effects outside the
/// session), as CockroachDB's run_transaction requires.
template <class F>
auto run_transaction(const sessionmaker& factory, F&& fn, RetryOptions options = {})
    -> std::invoke_result_t<F&, Session&> {
    for (int attempt = 0;; ++attempt) {
        Session s = factory();
        try {
            if constexpr (std::is_void_v<std::invoke_result_t<F&, Session&>>) {
                fn(s);
                s.commit();
                return;
            } else {
                auto result = fn(s);
                s.commit();
                return result;
            }
        } catch (const DBAPIError& e) {
            try {
                s.rollback();
            } catch (...) {
                // The connection may be gone; the Session is dropped either way.
            }
            if (!is_retryable(e) || attempt >= options.max_retries) throw;
        }
        detail::retry_sleep(options, attempt);
    }
}

}  // namespace athanor
