// Query<T>: SQLAlchemy's session.query(User). Immutable builder; every terminal call
// autoflushes first (unless autoflush is off or a no_autoflush guard is alive) and returns
// objects through the identity map: a row whose object is already in the session gives that
// object, unchanged unless it was expired.
#pragma once

#include <athanor/core/selectable.hpp>
#include <athanor/session/session.hpp>

#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace athanor {

enum class SynchronizeSession { false_, fetch };

namespace detail {
// Non-template cores of Query, in session_query.cpp.
/// Runs `stmt` and returns its objects through the identity map (autoflushing first if asked).
std::vector<std::shared_ptr<void>> query_all(Session& s, const Mapper& m, const Select& stmt,
                                             bool autoflush = true);
/// The same, handing each object to `sink(ctx, obj)` as it is loaded (no intermediate vector).
void query_each(Session& s, const Mapper& m, const Select& stmt,
                void (*sink)(void* ctx, std::shared_ptr<void>&& obj), void* ctx);
std::int64_t query_count(Session& s, const Select& stmt);
bool query_exists(Session& s, const Select& stmt);
std::int64_t query_delete(Session& s, const Mapper& m, const Select& stmt, SynchronizeSession sync);
std::int64_t query_update(Session& s, const Mapper& m, const Select& stmt, const ValuesMap& values,
                          SynchronizeSession sync);
Select query_select(const Mapper& m);
/// After a query loaded `objs` of mapper m: the relationships' loading strategies (their lazy=
/// and the query's options): selectin loads, raise and noload marks.
void apply_loaders(Session& s, const Mapper& m, const std::vector<std::shared_ptr<void>>& objs,
                   const std::vector<LoaderOption>& opts);
/// query_all() with the loading strategies: joined relationships LEFT OUTER JOINed into the
/// statement (parents de-duplicated), then apply_loaders().
std::vector<std::shared_ptr<void>> query_load(Session& s, const Mapper& m, const Select& stmt,
                                              const std::vector<LoaderOption>& opts);
ColumnElement filter_by_clause(const Mapper& m, const Params& criteria);

/// filter_by() equalities a Query keeps as values until a statement is needed: (index into
/// Mapper::columns(), value), in the order given. Two live inline (no allocation for the
/// common lookups), more on the heap. A lookup's query is made, moved once and dropped per
/// call, so moving and destroying integer terms (the usual keys) is a few instructions in line;
/// the other kinds and the heap are handled out of line.
class EqTerms {
public:
    using Term = std::pair<std::size_t, Value>;
    // The inline terms are constructed only when pushed (a Query made and moved per lookup
    // would otherwise build, move and destroy two empty Values each time). All terms are
    // either inline (heap_ null) or on the heap.
    EqTerms() noexcept {}
    EqTerms(const EqTerms& o) {
        if (o.heap_) {
            heap_.reset(new std::vector<Term>(*o.heap_));
            n_ = o.n_;
            return;
        }
        try {
            for (; n_ < o.n_; ++n_) new (slot(n_)) Term(o.inline_at(n_));
        } catch (...) {
            destroy_inline(0);
            throw;
        }
    }
    EqTerms(EqTerms&& o) noexcept { take(o); }
    EqTerms& operator=(const EqTerms& o) {
        if (this != &o) {
            EqTerms copy(o);
            *this = std::move(copy);
        }
        return *this;
    }
    EqTerms& operator=(EqTerms&& o) noexcept {
        if (this != &o) {
            clear();
            take(o);
        }
        return *this;
    }
    ~EqTerms() {
        if (!heap_) destroy_inline(0);
    }

    void push(std::size_t column, const Value& v) {
        if (n_ < kInline && !heap_) [[likely]] {  // copied straight into place
            if (const std::int64_t* x = v.if_int()) [[likely]]
                new (slot(n_)) Term(column, Value(*x));  // no visit of the value's kind
            else
                new (slot(n_)) Term(column, v);
            ++n_;
            return;
        }
        push_heap(column, v);
    }
    /// Keeps the first n terms.
    void truncate(std::size_t n) {
        if (n >= n_) return;
        if (!heap_) {
            destroy_inline(n);
            return;
        }
        heap_->resize(n);
        n_ = n;
        if (n == 0) heap_.reset();  // no term anywhere: inline, empty
    }
    void clear() noexcept {
        if (!heap_) destroy_inline(0);
        heap_.reset();
        n_ = 0;
    }
    std::size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    const Term* begin() const noexcept { return heap_ ? heap_->data() : inline_begin(); }
    const Term* end() const noexcept { return begin() + n_; }
    const Term& operator[](std::size_t i) const noexcept { return begin()[i]; }

private:
    // push() past the inline terms, out of line (a lookup's code stays small).
    [[gnu::noinline]] void push_heap(std::size_t column, const Value& v) {
        if (!heap_) {  // the inline terms move to the heap (copied: a throw changes nothing)
            std::unique_ptr<std::vector<Term>, FreeHeap> h(new std::vector<Term>);
            h->reserve(n_ + 1);
            for (std::size_t i = 0; i < n_; ++i) h->push_back(inline_at(i));
            h->emplace_back(column, v);
            destroy_inline(0);
            heap_ = std::move(h);
            n_ = heap_->size();
            return;
        }
        heap_->emplace_back(column, v);
        ++n_;
    }
    struct FreeHeap {
        [[gnu::noinline]] void operator()(std::vector<Term>* v) const noexcept { delete v; }
    };
    static constexpr std::size_t kInline = 2;
    void* slot(std::size_t i) noexcept { return inline_ + i * sizeof(Term); }
    const Term* inline_begin() const noexcept { return std::launder(reinterpret_cast<const Term*>(inline_)); }
    Term& inline_at(std::size_t i) noexcept { return *std::launder(reinterpret_cast<Term*>(slot(i))); }
    const Term& inline_at(std::size_t i) const noexcept { return inline_begin()[i]; }
    /// Destroys the inline terms from `from` on (only while heap_ is null). An integer, a real
    /// or NULL owns nothing: its term's lifetime just ends (no variant visit).
    void destroy_inline(std::size_t from) noexcept {
        while (n_ > from) {
            Term& t = inline_at(--n_);
            if (t.second.kind() >= Value::Kind::text) [[unlikely]]
                destroy_term(t);
        }
    }
    [[gnu::noinline]] static void destroy_term(Term& t) noexcept { t.~Term(); }
    [[gnu::noinline]] static void move_term(void* to, Term& from) noexcept { new (to) Term(std::move(from)); }
    /// Moves o's terms into this empty one; o is left empty. An integer term (a lookup's key)
    /// is copied in line, the others moved out of line.
    void take(EqTerms& o) noexcept {
        if (o.heap_) [[unlikely]] {
            heap_ = std::move(o.heap_);
            n_ = o.n_;
            o.n_ = 0;
            return;
        }
        for (; n_ < o.n_; ++n_) {
            Term& t = o.inline_at(n_);
            if (const std::int64_t* x = t.second.if_int()) [[likely]]
                new (slot(n_)) Term(t.first, Value(*x));
            else
                move_term(slot(n_), t);
        }
        o.destroy_inline(0);
    }
    alignas(Term) std::byte inline_[kInline * sizeof(Term)];
    std::unique_ptr<std::vector<Term>, FreeHeap> heap_;
    std::size_t n_ = 0;
};
/// The WHERE clause of `terms`, as filter_by_clause() would build it.
ColumnElement eq_clause(const Mapper& m, const EqTerms& terms);
/// Loads the objects of "SELECT <m's columns> FROM <m's table> WHERE <terms> [LIMIT 1]"
/// (autoflushing first), handing each to `sink`. The session keeps one prepared statement per
/// mapper, set of columns and limit (SQLAlchemy's baked queries): after the first call nothing
/// is built or compiled, the values are bound by position.
void query_eq(Session& s, const Mapper& m, const EqTerms& terms, bool first,
              void (*sink)(void* ctx, std::shared_ptr<void>&& obj), void* ctx);
/// query_eq() with LIMIT 1: the object, or null.
std::shared_ptr<void> query_eq_first(Session& s, const Mapper& m, const EqTerms& terms);

/// The state of a Query<T>, whatever T: the session and mapper, the filter_by() terms kept as
/// values while the query is simple, and the statement once it is not. Its copy, move and
/// destruction are out of line (session_query.cpp), so a lookup written as
/// session.query<T>().filter_by({...}).first() compiles to a few calls in the program's loop
/// instead of the members' code, inlined for each query. Not thread-safe (a Session is not).
class QueryCore {
protected:
    QueryCore(Session& s, const Mapper& m) noexcept : s_(&s), m_(&m) {}
    QueryCore(const QueryCore& o);
    QueryCore(QueryCore&& o) noexcept;
    QueryCore& operator=(const QueryCore& o);
    QueryCore& operator=(QueryCore&& o) noexcept;
    ~QueryCore();

    /// While the query is simple, appends `criteria` as terms and returns true; false (the query
    /// unchanged) when they need the general path: a builder other than filter_by() was called,
    /// a NULL (compared with IS NULL), a name given twice in a braced list (a Params keeps the
    /// last value of a repeated name: the caller builds one). Throws InvalidRequestError for an
    /// unknown name.
    bool add_eq(std::span<const std::pair<std::string_view, Value>> criteria);
    bool add_eq(const Params& criteria);

    /// What a query built by more than filter_by() also has, apart (a lookup's query is made,
    /// moved and dropped without it).
    struct Rare {
        std::optional<Select> stmt;  // the statement once a builder other than filter_by() was called
        std::optional<Select> full;  // full() of a simple query, built once when asked
        std::vector<LoaderOption> opts;
        ~Rare();  // out of line: a query's destructor only calls it when there is one
    };
    Rare& rare() const;  // rare_, made when first needed
    bool has_opts() const noexcept { return rare_ && !rare_->opts.empty(); }
    const std::vector<LoaderOption>& opts() const noexcept;

    Session* s_;
    const Mapper* m_;
    bool simple_ = true;  // the mapper's SELECT with eq_ as its only criteria
    EqTerms eq_;
    mutable std::unique_ptr<Rare> rare_;
};
}  // namespace detail

/// Rows of chosen columns over a Query's FROM and criteria (Query::with_entities()).
class RowQuery {
public:
    RowQuery(Session& s, Select stmt) : s_(&s), stmt_(std::move(stmt)) {}
    RowQuery filter(const ColumnElement& c) const { return {*s_, stmt_.where(c)}; }
    template <class... C>
    RowQuery order_by(const ColumnElement& first, const C&... rest) const {
        return {*s_, stmt_.order_by(first, rest...)};
    }
    template <class... C>
    RowQuery group_by(const ColumnElement& first, const C&... rest) const {
        return {*s_, stmt_.group_by(first, rest...)};
    }
    RowQuery having(const ColumnElement& c) const { return {*s_, stmt_.having(c)}; }
    RowQuery limit(std::int64_t n) const { return {*s_, stmt_.limit(n)}; }
    RowQuery offset(std::int64_t n) const { return {*s_, stmt_.offset(n)}; }
    RowQuery distinct() const { return {*s_, stmt_.distinct()}; }
    /// Autoflushes, then runs the statement.
    std::vector<Row> all() const;
    std::optional<Row> first() const;
    Row one() const;
    /// First column of every row.
    template <class V>
    std::vector<V> scalars() const {
        std::vector<V> out;
        for (const Row& r : all()) out.push_back(r.template get<V>(std::size_t{0}));
        return out;
    }
    const Select& statement() const noexcept { return stmt_; }

private:
    Session* s_;
    Select stmt_;
};

template <class T>
class Query : detail::QueryCore {
public:
    Query(Session& s, const Mapper& m) noexcept : QueryCore(s, m) {}

    Query filter(const ColumnElement& criterion) const { return with(full().where(criterion)); }
    /// Equality on mapped column names: filter_by({{"name", "ed"}}).
    Query filter_by(const Params& criteria) const& { return Query(*this).filter_by(criteria); }
    /// On a temporary (session.query<T>().filter_by(...)) the query is changed in place, not copied.
    Query filter_by(const Params& criteria) && {
        if (add_eq(criteria)) return std::move(*this);
        return with(full().where(detail::filter_by_clause(*m_, criteria)));
    }
    /// The same for a braced list (filter_by({{"id", 7}})): a lookup by a few columns builds no
    /// Params.
    Query filter_by(std::initializer_list<std::pair<std::string_view, Value>> criteria) const& {
        return Query(*this).filter_by(criteria);
    }
    Query filter_by(std::initializer_list<std::pair<std::string_view, Value>> criteria) && {
        if (add_eq({criteria.begin(), criteria.size()})) return std::move(*this);
        // A name given twice (the last value wins) or a NULL: as the Params they make.
        Params p;
        p.reserve(criteria.size());
        for (const auto& [k, v] : criteria) p.set(std::string(k), v);
        return std::move(*this).filter_by(p);
    }
    template <class... C>
    Query order_by(const ColumnElement& first, const C&... rest) const {
        return with(full().order_by(first, rest...));
    }
    Query limit(std::int64_t n) const { return with(full().limit(n)); }
    Query offset(std::int64_t n) const { return with(full().offset(n)); }
    Query distinct() const { return with(full().distinct()); }
    /// JOIN to another table on an explicit ON clause (or the one foreign key between them);
    /// the objects loaded are still T's.
    Query join(const FromClause& target, const ColumnElement& on = {}) const { return with(full().join(target, on)); }
    Query outerjoin(const FromClause& target, const ColumnElement& on = {}) const {
        return with(full().outerjoin(target, on));
    }
    template <class... C>
    Query group_by(const ColumnElement& first, const C&... rest) const {
        return with(full().group_by(first, rest...));
    }
    Query having(const ColumnElement& criterion) const { return with(full().having(criterion)); }
    /// The query's FROM and criteria with other columns selected: rows instead of objects
    /// (SQLAlchemy's Query.with_entities()).
    template <class... C>
    RowQuery with_entities(const SelectItem& first, const C&... rest) const {
        return RowQuery(*s_, full().with_only_columns(std::vector<SelectItem>{first, SelectItem(rest)...}));
    }

    /// Loader options: .options(sa::selectinload(&User::addresses), sa::raiseload(...)).
    template <class... O>
    Query options(const LoaderOption& first, const O&... rest) const {
        Query q = *this;
        auto& opts = q.rare().opts;
        opts.push_back(first);
        (opts.push_back(rest), ...);
        return q;
    }
    /// JOIN along a relationship: join(&User::addresses) is
    /// "JOIN addresses ON users.id = addresses.user_id".
    template <class O, class U>
    Query join(Collection<U> O::*member) const {
        return with(attr(member).join_from(full()));
    }
    /// LEFT OUTER JOIN along a relationship.
    template <class O, class U>
    Query outerjoin(Collection<U> O::*member) const {
        return with(attr(member).join_from(full(), true));
    }
    template <class O, class U>
    Query outerjoin(Ref<U> O::*member) const {
        return with(attr(member).join_from(full(), true));
    }
    template <class O, class U>
    Query join(WriteOnly<U> O::*member) const {
        return with(attr(member).join_from(full()));
    }
    template <class O, class U>
    Query join(Ref<U> O::*member) const {
        return with(attr(member).join_from(full()));
    }

    std::vector<std::shared_ptr<T>> all() const {
        std::vector<std::shared_ptr<T>> out;
        if (baked()) {
            detail::query_eq(*s_, *m_, eq_, false, &push<T>, &out);
            return out;
        }
        if (m_->has_relationships() || has_opts()) {
            auto objs = detail::query_load(*s_, *m_, full(), opts());
            std::vector<std::shared_ptr<T>> typed;
            typed.reserve(objs.size());
            for (auto& o : objs) typed.push_back(std::static_pointer_cast<T>(std::move(o)));
            return typed;
        }
        detail::query_each(*s_, *m_, full(), &push<T>, &out);
        return out;
    }
    /// The first object (LIMIT 1), or null.
    std::shared_ptr<T> first() const {
        if (baked()) {
            return std::static_pointer_cast<T>(detail::query_eq_first(*s_, *m_, eq_));
        }
        auto r = m_->has_relationships() || has_opts() ? detail::query_load(*s_, *m_, full().limit(1), opts())
                                                            : detail::query_all(*s_, *m_, full().limit(1));
        return r.empty() ? nullptr : std::static_pointer_cast<T>(r.front());
    }
    /// Exactly one: NoResultFound / MultipleResultsFound otherwise. Like SQLAlchemy, the
    /// statement is run as it is (no LIMIT is added).
    std::shared_ptr<T> one() const {
        auto r = one_or_none();
        if (!r) throw NoResultFound("No row was found when one was required");
        return r;
    }
    std::shared_ptr<T> one_or_none() const {
        if (baked()) {
            auto r = all();
            if (r.size() > 1) throw MultipleResultsFound("Multiple rows were found when exactly one was required");
            return r.empty() ? nullptr : std::move(r.front());
        }
        auto r = m_->has_relationships() || has_opts() ? detail::query_load(*s_, *m_, full(), opts())
                                                            : detail::query_all(*s_, *m_, full());
        if (r.size() > 1) throw MultipleResultsFound("Multiple rows were found when exactly one was required");
        return r.empty() ? nullptr : std::static_pointer_cast<T>(r.front());
    }
    /// SELECT count(*) FROM (the query).
    std::int64_t count() const { return detail::query_count(*s_, full()); }
    /// SELECT EXISTS (the query).
    bool exists() const { return detail::query_exists(*s_, full()); }
    /// Bulk DELETE of the matching rows; with fetch, matching objects in the session become
    /// deleted (their keys come back through RETURNING). Returns the rows deleted.
    std::int64_t delete_(SynchronizeSession sync = SynchronizeSession::fetch) const {
        return detail::query_delete(*s_, *m_, full(), sync);
    }
    /// Bulk UPDATE of the matching rows; with fetch, matching objects in the session are
    /// reloaded. Returns the rows updated.
    std::int64_t update(const ValuesMap& values, SynchronizeSession sync = SynchronizeSession::fetch) const {
        return detail::query_update(*s_, *m_, full(), values, sync);
    }

    const Select& statement() const { return full(); }

private:
    Query with(Select s) const {
        Query q(*s_, *m_);
        q.rare().stmt = std::move(s);
        q.simple_ = false;
        if (has_opts()) q.rare().opts = rare_->opts;
        return q;
    }
    /// The whole statement: stmt_, or while simple_ the mapper's SELECT with the filter_by()
    /// terms, built when first asked for (a baked terminal call never needs it).
    const Select& full() const {
        if (!simple_) return *rare_->stmt;
        auto& full = rare().full;
        if (!full) {
            full = detail::query_select(*m_);
            if (!eq_.empty()) full = full->where(detail::eq_clause(*m_, eq_));
        }
        return *full;
    }
    /// Runs by the session's prepared statement for (mapper, columns, limit), see query_eq().
    bool baked() const noexcept { return simple_ && !has_opts() && !m_->has_relationships(); }
    template <class U>
    static void push(void* ctx, std::shared_ptr<void>&& obj) {
        static_cast<std::vector<std::shared_ptr<U>>*>(ctx)->push_back(std::static_pointer_cast<U>(std::move(obj)));
    }
};

template <class T>
Query<T> Session::query() {
    static_assert(!std::is_same_v<T, Record>, "query Records with session.query<sa::Record>(table)");
    return Query<T>(*this, mapper_of<T>());
}

template <class T>
    requires std::is_same_v<T, Record>
Query<T> Session::query(const Table& table) {
    return Query<T>(*this, dynamic_mapper(table));
}

}  // namespace athanor
