// Query<T>: SQLAlchemy's session.query(User). Immutable builder; every terminal call
// autoflushes first (unless autoflush is off or a no_autoflush guard is alive) and returns
// objects through the identity map: a row whose object is already in the session gives that
// object, unchanged unless it was expired.
#pragma once

#include <athanor/core/selectable.hpp>
#include <athanor/session/session.hpp>

#include <memory>
#include <optional>
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
class Query {
public:
    Query(Session& s, const Mapper& m) : s_(&s), m_(&m), stmt_(detail::query_select(m)) {}

    Query filter(const ColumnElement& criterion) const { return with(stmt_.where(criterion)); }
    /// Equality on mapped column names: filter_by({{"name", "ed"}}).
    Query filter_by(const Params& criteria) const {
        return with(stmt_.where(detail::filter_by_clause(*m_, criteria)));
    }
    template <class... C>
    Query order_by(const ColumnElement& first, const C&... rest) const {
        return with(stmt_.order_by(first, rest...));
    }
    Query limit(std::int64_t n) const { return with(stmt_.limit(n)); }
    Query offset(std::int64_t n) const { return with(stmt_.offset(n)); }
    Query distinct() const { return with(stmt_.distinct()); }
    /// JOIN to another table on an explicit ON clause (or the one foreign key between them);
    /// the objects loaded are still T's.
    Query join(const FromClause& target, const ColumnElement& on = {}) const { return with(stmt_.join(target, on)); }
    Query outerjoin(const FromClause& target, const ColumnElement& on = {}) const {
        return with(stmt_.outerjoin(target, on));
    }
    template <class... C>
    Query group_by(const ColumnElement& first, const C&... rest) const {
        return with(stmt_.group_by(first, rest...));
    }
    Query having(const ColumnElement& criterion) const { return with(stmt_.having(criterion)); }
    /// The query's FROM and criteria with other columns selected: rows instead of objects
    /// (SQLAlchemy's Query.with_entities()).
    template <class... C>
    RowQuery with_entities(const SelectItem& first, const C&... rest) const {
        return RowQuery(*s_, stmt_.with_only_columns(std::vector<SelectItem>{first, SelectItem(rest)...}));
    }

    /// Loader options: .options(sa::selectinload(&User::addresses), sa::raiseload(...)).
    template <class... O>
    Query options(const LoaderOption& first, const O&... rest) const {
        Query q = *this;
        q.opts_.push_back(first);
        (q.opts_.push_back(rest), ...);
        return q;
    }
    /// JOIN along a relationship: join(&User::addresses) is
    /// "JOIN addresses ON users.id = addresses.user_id".
    template <class O, class U>
    Query join(Collection<U> O::*member) const {
        return with(attr(member).join_from(stmt_));
    }
    /// LEFT OUTER JOIN along a relationship.
    template <class O, class U>
    Query outerjoin(Collection<U> O::*member) const {
        return with(attr(member).join_from(stmt_, true));
    }
    template <class O, class U>
    Query outerjoin(Ref<U> O::*member) const {
        return with(attr(member).join_from(stmt_, true));
    }
    template <class O, class U>
    Query join(WriteOnly<U> O::*member) const {
        return with(attr(member).join_from(stmt_));
    }
    template <class O, class U>
    Query join(Ref<U> O::*member) const {
        return with(attr(member).join_from(stmt_));
    }

    std::vector<std::shared_ptr<T>> all() const {
        if (m_->has_relationships() || !opts_.empty()) {
            auto objs = detail::query_load(*s_, *m_, stmt_, opts_);
            std::vector<std::shared_ptr<T>> typed;
            typed.reserve(objs.size());
            for (auto& o : objs) typed.push_back(std::static_pointer_cast<T>(std::move(o)));
            return typed;
        }
        std::vector<std::shared_ptr<T>> out;
        detail::query_each(
            *s_, *m_, stmt_,
            [](void* ctx, std::shared_ptr<void>&& obj) {
                static_cast<std::vector<std::shared_ptr<T>>*>(ctx)->push_back(std::static_pointer_cast<T>(std::move(obj)));
            },
            &out);
        return out;
    }
    /// The first object (LIMIT 1), or null.
    std::shared_ptr<T> first() const {
        auto r = m_->has_relationships() || !opts_.empty() ? detail::query_load(*s_, *m_, stmt_.limit(1), opts_)
                                                            : detail::query_all(*s_, *m_, stmt_.limit(1));
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
        auto r = m_->has_relationships() || !opts_.empty() ? detail::query_load(*s_, *m_, stmt_, opts_)
                                                            : detail::query_all(*s_, *m_, stmt_);
        if (r.size() > 1) throw MultipleResultsFound("Multiple rows were found when exactly one was required");
        return r.empty() ? nullptr : std::static_pointer_cast<T>(r.front());
    }
    /// SELECT count(*) FROM (the query).
    std::int64_t count() const { return detail::query_count(*s_, stmt_); }
    /// SELECT EXISTS (the query).
    bool exists() const { return detail::query_exists(*s_, stmt_); }
    /// Bulk DELETE of the matching rows; with fetch, matching objects in the session become
    /// deleted (their keys come back through RETURNING). Returns the rows deleted.
    std::int64_t delete_(SynchronizeSession sync = SynchronizeSession::fetch) const {
        return detail::query_delete(*s_, *m_, stmt_, sync);
    }
    /// Bulk UPDATE of the matching rows; with fetch, matching objects in the session are
    /// reloaded. Returns the rows updated.
    std::int64_t update(const ValuesMap& values, SynchronizeSession sync = SynchronizeSession::fetch) const {
        return detail::query_update(*s_, *m_, stmt_, values, sync);
    }

    const Select& statement() const noexcept { return stmt_; }

private:
    Query with(Select s) const {
        Query q = *this;
        q.stmt_ = std::move(s);
        return q;
    }
    Session* s_;
    const Mapper* m_;
    Select stmt_;
    std::vector<LoaderOption> opts_;
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
