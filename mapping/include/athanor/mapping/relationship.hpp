// Relationships between mapped classes (SQLAlchemy's relationship()): the member types
// sa::Ref<T> (many-to-one) and sa::Collection<T> (one-to-many), and the declaration
// sa::relationship("name", &Owner::member, options...), accepted by classical mapping
// (MapperBuilder::relationship) and by DeclarativeBase::declare alike.
//
// Ref and Collection work with an incomplete T. They are plain values until a Session tracks
// the object that holds them; from then on they are *instrumented*: setting one side of a
// back_populates pair fills the other in memory (no SQL), and an unloaded side loads on first
// access through the session (lazy="select"), or raises DetachedInstanceError when the object
// has left its session (never a silent empty collection).
//
// Ownership: a Collection holds its children strongly; a Ref holds its target strongly too,
// except the many-to-one side of a back_populates pair, which holds it weakly once the target
// is tracked by a session (the session, or the program, keeps it alive; a weak side that
// expired reloads by key), so a bidirectional pair is not a shared_ptr cycle.
//
// Thread-safety: as the objects holding them (one thread at a time).
#pragma once

#include <athanor/core/exc.hpp>
#include <athanor/core/selectable.hpp>
#include <athanor/core/value.hpp>

#include <any>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <typeindex>
#include <vector>

namespace athanor {

class Mapper;
class Table;
class Column;
struct RelationshipProperty;

/// Loading strategies (SQLAlchemy's lazy=): select (on first access), selectin (with the
/// query, one IN query per 500 parents), raise (InvalidRequestError on access), noload (never).
enum class Lazy : std::uint8_t { select, joined, selectin, raise, noload };

namespace detail {

class RelationMember;

/// Set by the session on an instrumented member; the hooks are the session's (mapping does
/// not depend on session).
struct RelationState {
    const RelationshipProperty* prop = nullptr;
    void* owner = nullptr;
    std::weak_ptr<void> session;  // the SessionImpl
    void (*load)(RelationState& st, RelationMember& member) = nullptr;
    void (*changed)(RelationState& st, const std::shared_ptr<void>& child, bool added) = nullptr;
    /// Flushes the owner's session (WriteOnly::select() of an owner without a key yet).
    void (*flush)(RelationState& st) = nullptr;
    bool in_change = false;  // re-entrancy guard while the other side is being filled in
    Lazy lazy = Lazy::select;  // the relationship's, or a query option's for this object
    bool modified = false;     // changed by the program since the last flush (session.dirty)
    /// The owner was persistent in a session that let it go while the program held it (the
    /// session keeps this mark in the object itself when it has relationships).
    bool detached = false;
    /// Many-to-many: the members as the association table has them (as loaded or last flushed).
    std::vector<std::shared_ptr<void>> committed;
};

/// What Ref and Collection share, type-erased, for the session: the related objects as
/// shared_ptr<void>, whether they are loaded, and the instrumentation.
class RelationMember {
public:
    RelationMember() = default;
    RelationMember(const RelationMember& o) : loaded_(o.loaded_) {}  // a copy is not instrumented
    RelationMember& operator=(const RelationMember&) { return *this; }
    virtual ~RelationMember() = default;

    virtual std::size_t erased_size() const noexcept = 0;
    virtual std::shared_ptr<void> erased_at(std::size_t i) const = 0;
    /// Replaces the contents without instrumentation side effects (loading).
    virtual void erased_assign(std::vector<std::shared_ptr<void>> items) = 0;
    /// Expiry: forgets the contents and loads again on the next access.
    virtual void erased_reset() = 0;
    /// Replaces the contents as the program would (Ref::operator=, Collection assignment,
    /// WriteOnly::add): with the instrumentation's effects (back_populates, cascades).
    virtual void erased_set(std::vector<std::shared_ptr<void>> items) = 0;
    /// Collections: membership, and raw appends / removals (no hooks, loaded state unchanged),
    /// for the session to fill in the other side of a pair without copying the contents.
    virtual bool erased_contains(const void* p) const {
        for (std::size_t i = 0; i < erased_size(); ++i)
            if (erased_at(i).get() == p) return true;
        return false;
    }
    virtual void erased_append(std::shared_ptr<void> p) {
        std::vector<std::shared_ptr<void>> items;
        for (std::size_t i = 0; i < erased_size(); ++i) items.push_back(erased_at(i));
        items.push_back(std::move(p));
        erased_assign(std::move(items));
    }
    virtual void erased_remove(const void* p) {
        std::vector<std::shared_ptr<void>> items;
        for (std::size_t i = 0; i < erased_size(); ++i)
            if (auto x = erased_at(i); x.get() != p) items.push_back(std::move(x));
        erased_assign(std::move(items));
    }
    /// A Ref: holds `target` weakly (the back side of a pair; see the header comment).
    virtual void erased_set_weak(const std::shared_ptr<void>& target) { (void)target; }
    /// A Ref holding `target` weakly already.
    virtual bool erased_weak_to(const void* target) const noexcept {
        (void)target;
        return false;
    }

    bool loaded() const noexcept { return loaded_; }
    void set_loaded(bool on) noexcept { loaded_ = on; }
    /// The instrumentation (null while the member is a plain value). Held inside the member:
    /// tracking an object costs no allocation per relationship.
    RelationState* state() const noexcept { return instrumented_ ? &state_ : nullptr; }
    /// Turns the instrumentation on and returns it to be filled in by the session.
    RelationState& instrument() noexcept {
        state_ = RelationState{};
        instrumented_ = true;
        return state_;
    }

    /// Loads through the session when instrumented and not loaded; DetachedInstanceError when
    /// the owner has left its session.
    void ensure_loaded() const;
    /// Tells the session (if instrumented) that `child` was added or removed (back_populates,
    /// save-update cascade).
    void appended(const std::shared_ptr<void>& child) const;
    void removed(const std::shared_ptr<void>& child) const;

protected:
    mutable bool loaded_ = true;  // a new object's members are complete as the program set them
    bool instrumented_ = false;
    mutable RelationState state_;
};


/// Ref::key(): the primary key of the target held, else the owner's foreign key values (empty
/// when there is no reference). Never loads.
std::vector<Value> ref_key(const RelationMember& member, const void* target, std::type_index type);
/// WriteOnly::select(): the target's rows related to the owner (flushing a pending owner first).
Select write_only_select(const RelationMember& member);

}  // namespace detail

/// Many-to-one (or one-to-one) reference to a mapped object.
template <class T>
class Ref : public detail::RelationMember {
public:
    Ref() = default;
    Ref(std::nullptr_t) {}  // NOLINT
    Ref(std::shared_ptr<T> p) : strong_(std::move(p)) {}  // NOLINT
    Ref(const Ref& o) : RelationMember(o), strong_(o.get_no_load()) {}
    Ref& operator=(const Ref& o) { return *this = o.get_no_load(); }

    Ref& operator=(std::shared_ptr<T> p) {
        // The old target is needed to take this object out of its collection (back_populates)
        // and to know the reference changed: load it, as SQLAlchemy does on set.
        if (instrumented_ && !loaded_) {
            try {
                ensure_loaded();
            } catch (const DetachedInstanceError&) {
                // A detached object can still be given a new target.
            }
        }
        auto old = get_no_load();
        if (old == p && loaded_) return *this;
        set_raw(p);
        loaded_ = true;
        if (old) removed(old);
        if (p) appended(p);
        return *this;
    }
    Ref& operator=(std::nullptr_t) { return *this = std::shared_ptr<T>(); }

    /// The target, loaded through the session if needed (lazy="select"): a many-to-one whose
    /// target is in the identity map costs no SQL.
    std::shared_ptr<T> get() const {
        if (weak_set_ && !strong_ && weak_.expired()) loaded_ = false;  // reload by key
        ensure_loaded();
        return get_no_load();
    }
    T* operator->() const {
        auto p = get();
        if (!p) throw InvalidRequestError("dereferencing an empty sa::Ref");
        return p.get();
    }
    T& operator*() const { return *operator->(); }
    explicit operator bool() const { return get() != nullptr; }
    friend bool operator==(const Ref& r, const std::shared_ptr<T>& p) { return r.get() == p; }
    friend bool operator==(const Ref& r, std::nullptr_t) { return r.get() == nullptr; }

    /// The key of the target, never loading: its primary key when the target is held, else the
    /// foreign key values of the owner (a Ref not loaded yet); empty when there is no target.
    std::vector<Value> key() const { return detail::ref_key(*this, get_no_load().get(), std::type_index(typeid(T))); }
    /// The target as held now, never loading (null when not loaded).
    std::shared_ptr<T> get_no_load() const {
        if (strong_) return strong_;
        return std::static_pointer_cast<T>(weak_.lock());
    }

    // ---- RelationMember
    std::size_t erased_size() const noexcept override { return get_no_load() ? 1 : 0; }
    std::shared_ptr<void> erased_at(std::size_t) const override { return get_no_load(); }
    void erased_assign(std::vector<std::shared_ptr<void>> items) override {
        set_raw(items.empty() ? nullptr : std::static_pointer_cast<T>(items.front()));
    }
    void erased_reset() override {
        set_raw(nullptr);
        loaded_ = false;
    }
    void erased_set(std::vector<std::shared_ptr<void>> items) override {
        *this = items.empty() ? std::shared_ptr<T>() : std::static_pointer_cast<T>(items.front());
    }
    void erased_set_weak(const std::shared_ptr<void>& target) override {
        weak_ = target;  // held as void: no temporary shared_ptr<T> (two atomic operations fewer)
        weak_set_ = true;
        strong_.reset();
    }
    bool erased_weak_to(const void* target) const noexcept override {
        return weak_set_ && !strong_ && weak_.lock().get() == target;
    }

private:
    void set_raw(std::shared_ptr<T> p) {
        strong_ = std::move(p);
        weak_.reset();
        weak_set_ = false;
    }
    std::shared_ptr<T> strong_;
    std::weak_ptr<void> weak_;  // the object of type T
    bool weak_set_ = false;
};

/// One-to-many (or many-to-many) collection: behaves like std::vector<std::shared_ptr<T>>.
template <class T>
class Collection : public detail::RelationMember {
public:
    using value_type = std::shared_ptr<T>;
    using iterator = typename std::vector<value_type>::iterator;
    using const_iterator = typename std::vector<value_type>::const_iterator;

    Collection() = default;
    Collection(std::initializer_list<value_type> items) : items_(items) {}
    Collection(std::vector<value_type> items) : items_(std::move(items)) {}  // NOLINT
    Collection(const Collection& o) : RelationMember(o), items_(o.items_) {}
    Collection& operator=(const Collection& o) { return assign(o.items_); }
    Collection& operator=(std::initializer_list<value_type> items) { return assign(std::vector<value_type>(items)); }
    Collection& operator=(std::vector<value_type> items) { return assign(std::move(items)); }

    std::size_t size() const {
        ensure_loaded();
        return items_.size();
    }
    bool empty() const { return size() == 0; }
    const value_type& operator[](std::size_t i) const {
        ensure_loaded();
        return items_.at(i);
    }
    const value_type& front() const { return (*this)[0]; }
    const value_type& back() const {
        ensure_loaded();
        return items_.at(items_.size() - 1);
    }
    const_iterator begin() const {
        ensure_loaded();
        return items_.begin();
    }
    const_iterator end() const {
        ensure_loaded();
        return items_.end();
    }
    bool contains(const value_type& p) const {
        ensure_loaded();
        for (const auto& x : items_)
            if (x == p) return true;
        return false;
    }

    /// Appending to a collection that is not loaded yet does not load it (SQLAlchemy queues
    /// the append the same way); the item is part of it from then on.
    void push_back(value_type p) {
        if (!p) throw ArgumentError("a null object cannot be added to a collection");
        for (const auto& x : items_)
            if (x == p) return;  // a collection holds an object once
        items_.push_back(p);
        appended(p);
    }
    void append(value_type p) { push_back(std::move(p)); }
    const_iterator erase(const_iterator pos) {
        ensure_loaded();
        value_type gone = *pos;
        auto it = items_.erase(pos);
        removed(gone);
        return it;
    }
    /// Removes `p` if present.
    void remove(const value_type& p) {
        ensure_loaded();
        for (auto it = items_.begin(); it != items_.end(); ++it)
            if (*it == p) {
                erase(it);
                return;
            }
    }
    void clear() { assign({}); }

    /// The items as held now, never loading.
    const std::vector<value_type>& items_no_load() const noexcept { return items_; }

    // ---- RelationMember
    std::size_t erased_size() const noexcept override { return items_.size(); }
    std::shared_ptr<void> erased_at(std::size_t i) const override { return items_.at(i); }
    void erased_reset() override {
        items_.clear();
        loaded_ = false;
    }
    void erased_set(std::vector<std::shared_ptr<void>> items) override {
        std::vector<value_type> typed;
        typed.reserve(items.size());
        for (auto& p : items) typed.push_back(std::static_pointer_cast<T>(std::move(p)));
        assign(std::move(typed));
    }
    bool erased_contains(const void* p) const override {
        for (const auto& x : items_)
            if (x.get() == p) return true;
        return false;
    }
    void erased_append(std::shared_ptr<void> p) override { items_.push_back(std::static_pointer_cast<T>(std::move(p))); }
    void erased_remove(const void* p) override {
        for (auto it = items_.begin(); it != items_.end(); ++it)
            if (it->get() == p) {
                items_.erase(it);
                return;
            }
    }
    void erased_assign(std::vector<std::shared_ptr<void>> items) override {
        std::vector<value_type> typed;
        typed.reserve(items.size());
        for (auto& p : items) typed.push_back(std::static_pointer_cast<T>(std::move(p)));
        // Items appended before the load (queued) stay, after the loaded ones.
        for (auto& q : items_) {
            bool seen = false;
            for (const auto& t : typed) seen |= t == q;
            if (!seen) typed.push_back(q);
        }
        items_ = std::move(typed);
    }

private:
    Collection& assign(std::vector<value_type> items) {
        if (instrumented_) ensure_loaded();
        std::vector<value_type> old = std::move(items_);
        items_.clear();
        for (auto& p : items) {
            if (!p) throw ArgumentError("a null object cannot be added to a collection");
            bool dup = false;
            for (const auto& x : items_) dup |= x == p;
            if (!dup) items_.push_back(std::move(p));
        }
        loaded_ = true;
        for (const auto& o : old) {
            bool kept = false;
            for (const auto& x : items_) kept |= x == o;
            if (!kept) removed(o);
        }
        for (const auto& n : items_) {
            bool was = false;
            for (const auto& o : old) was |= o == n;
            if (!was) appended(n);
        }
        return *this;
    }
    std::vector<value_type> items_;
};

/// A write-only collection (SQLAlchemy's WriteOnlyMapped), for collections too large to load:
/// it never loads. add() / remove() are queued and written by the next flush (the child's
/// foreign key set, or NULLed / the child deleted under delete-orphan); select() is the SELECT of
/// the related rows, to run with session.scalars<std::shared_ptr<T>>(...) or with a filter, a
/// LIMIT, an ORDER BY of one's own. Many-to-many (secondary) is not supported for WriteOnly.
template <class T>
class WriteOnly : public detail::RelationMember {
public:
    using value_type = std::shared_ptr<T>;
    WriteOnly() = default;
    WriteOnly(const WriteOnly& o) : RelationMember(o), pending_(o.pending_) {}
    WriteOnly& operator=(const WriteOnly&) { return *this; }  // nothing to assign: it is a window on rows

    /// Queues `p` for the next flush (save-update cascade: p becomes pending in the session).
    void add(value_type p) {
        if (!p) throw ArgumentError("a null object cannot be added to a collection");
        for (const auto& x : pending_)
            if (x == p) return;
        pending_.push_back(p);
        appended(p);
    }
    void add_all(const std::vector<value_type>& items) {
        for (const auto& p : items) add(p);
    }
    /// Queues the removal of `p` (loaded by the program, e.g. through select()).
    void remove(const value_type& p) {
        if (!p) return;
        for (auto it = pending_.begin(); it != pending_.end(); ++it)
            if (*it == p) {
                pending_.erase(it);
                break;
            }
        removed(p);
    }
    /// SELECT of the related rows (target.fk = the owner's key), in the relationship's
    /// order_by if it has one. Throws InvalidRequestError when the owner is not in a session.
    Select select() const { return detail::write_only_select(*this); }
    /// Items added since the last flush.
    const std::vector<value_type>& pending() const noexcept { return pending_; }

    // ---- RelationMember (the queued additions; never loads)
    std::size_t erased_size() const noexcept override { return pending_.size(); }
    std::shared_ptr<void> erased_at(std::size_t i) const override { return pending_.at(i); }
    void erased_assign(std::vector<std::shared_ptr<void>> items) override {
        pending_.clear();
        for (auto& p : items) pending_.push_back(std::static_pointer_cast<T>(std::move(p)));
    }
    void erased_reset() override { pending_.clear(); }
    void erased_set(std::vector<std::shared_ptr<void>> items) override {
        for (auto& p : items) add(std::static_pointer_cast<T>(std::move(p)));
    }

private:
    std::vector<value_type> pending_;
};

// ---- declaration ------------------------------------------------------------------------------

/// Cascades, SQLAlchemy's names: "save-update, merge" by default; "all" is save-update, merge,
/// refresh-expire, expunge, delete; "delete-orphan" adds deleting removed children.
struct Cascade {
    bool save_update = true, merge = true, expunge = false, refresh_expire = false, delete_ = false,
         delete_orphan = false;
    /// Parses "all, delete-orphan" and the like; ArgumentError names an unknown word.
    static Cascade parse(std::string_view text);
};

/// A relationship of a mapper, type-erased (built by sa::relationship()).
struct RelationshipProperty {
    std::string key;
    std::type_index target{typeid(void)};      // the related class
    std::string target_name;
    bool collection = false;                   // Collection<T> (else Ref<T>)
    std::function<detail::RelationMember*(void* owner)> member;
    std::any member_pointer;                   // for attr() / options
    std::string back_populates;                // the other side's key ("" = none)
    std::function<std::string(const Mapper& target)> back_populates_of;  // from a member pointer
    Cascade cascade;
    Lazy lazy = Lazy::select;
    bool passive_deletes = false;
    bool viewonly = false;
    bool post_update = false;  // the foreign key written by a second UPDATE (rows pointing at each other)
    bool write_only = false;   // a WriteOnly member (never loaded)
    std::function<std::string(const Mapper& target)> order_by;
    /// foreign_keys(&Child::parent_id): picks the foreign key when several link the two tables.
    std::function<std::vector<std::string>(const Mapper& owner, const Mapper& target)> foreign_keys;  // a column key of the target ("" = none)

    // Resolved when the owner's mapper is configured:
    const Mapper* owner = nullptr;
    const Mapper* target_mapper = nullptr;
    /// The foreign key pairs: (column of the referred table, referring column). For a Ref the
    /// referring columns are the owner's; for a Collection they are the target's.
    std::vector<std::pair<std::size_t, std::size_t>> pairs;  // (index in referred mapper, index in referring mapper)
    const RelationshipProperty* back = nullptr;
    /// Many-to-many: the association table, and its columns referring to the owner's and the
    /// target's keys: (index in the owner / target mapper, column of the secondary table).
    const Table* secondary = nullptr;
    std::vector<std::pair<std::size_t, const Column*>> secondary_owner, secondary_target;
};

}  // namespace athanor
