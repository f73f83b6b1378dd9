// Loading objects through the identity map, count/exists, and Query's bulk delete/update.
#include "session_impl.hpp"

#include <athanor/core/exc.hpp>

#include <algorithm>

namespace athanor::detail {

Select query_select(const Mapper& m) { return m.select_all(); }

namespace {
[[noreturn, gnu::noinline, gnu::cold]] void throw_no_property(const Mapper& m, std::string_view k) {
    throw InvalidRequestError("Entity namespace for \"" + m.class_name() + "\" has no property \"" + std::string(k) +
                              "\"");
}
}  // namespace

ColumnElement filter_by_clause(const Mapper& m, const Params& criteria) {
    std::vector<ColumnElement> parts;
    for (const auto& [k, v] : criteria) {
        const ColumnProperty* p = m.find(k);
        if (!p) throw_no_property(m, k);
        parts.push_back(p->column->expr() == v);
    }
    if (parts.empty()) return true_();
    return and_(parts);
}

namespace {
// (name, value) pairs of a Params or of a braced list into terms.
template <class Pairs>
bool add_terms(const Mapper& m, const Pairs& criteria, EqTerms& terms) {
    std::size_t before = terms.size();
    for (const auto& [k, v] : criteria) {
        int i = m.index_of(k);
        if (i < 0) [[unlikely]]
            throw_no_property(m, k);
        if (v.is_null()) {  // "IS NULL": another statement shape, built the general way
            terms.truncate(before);
            return false;
        }
        terms.push(static_cast<std::size_t>(i), v);
    }
    return true;
}
}  // namespace

bool QueryCore::add_eq(const Params& criteria) {
    if (!simple_) return false;
    const std::size_t before = eq_.size();
    if (!add_terms(*m_, criteria, eq_)) return false;
    if (eq_.size() != before && rare_) rare_->full.reset();  // full() was built without them
    return true;
}

ATHANOR_HOT bool QueryCore::add_eq(std::span<const std::pair<std::string_view, Value>> criteria) {
    if (!simple_) return false;
    for (std::size_t a = 0; a < criteria.size(); ++a)
        for (std::size_t b = a + 1; b < criteria.size(); ++b)
            if (criteria[a].first == criteria[b].first) return false;  // the last one wins: a Params says so
    const std::size_t before = eq_.size();
    if (!add_terms(*m_, criteria, eq_)) return false;
    if (eq_.size() != before && rare_) [[unlikely]]
        rare_->full.reset();  // full() was built without them
    return true;
}

QueryCore::QueryCore(const QueryCore& o)
    : s_(o.s_), m_(o.m_), simple_(o.simple_), eq_(o.eq_), rare_(o.rare_ ? std::make_unique<Rare>(*o.rare_) : nullptr) {}
QueryCore& QueryCore::operator=(const QueryCore& o) {
    if (this != &o) *this = QueryCore(o);
    return *this;
}
QueryCore& QueryCore::operator=(QueryCore&& o) noexcept = default;
// A lookup's query is made, moved once (filter_by() on the temporary) and dropped: a few words
// and its terms (see EqTerms).
ATHANOR_HOT QueryCore::QueryCore(QueryCore&& o) noexcept = default;
ATHANOR_HOT QueryCore::~QueryCore() = default;

[[gnu::noinline]] QueryCore::Rare::~Rare() = default;

QueryCore::Rare& QueryCore::rare() const {
    if (!rare_) rare_ = std::make_unique<Rare>();
    return *rare_;
}
const std::vector<LoaderOption>& QueryCore::opts() const noexcept {
    static const std::vector<LoaderOption> none;
    return rare_ ? rare_->opts : none;
}


ColumnElement eq_clause(const Mapper& m, const EqTerms& terms) {
    std::vector<ColumnElement> parts;
    parts.reserve(terms.size());
    for (const auto& [i, v] : terms) parts.push_back(m.columns()[i].column->expr() == v);
    if (parts.empty()) return true_();
    return and_(parts);
}

namespace {
/// The session's statement for (m, the terms' columns, first), prepared on the first query of
/// that shape: out of line and cold, so the per-call path of query_eq() stays small.
[[gnu::noinline, gnu::cold]] std::vector<SessionImpl::EqCursor>::iterator add_eq_cursor(
    SessionImpl& impl, Connection& c, const Mapper& m, const EqTerms& terms, bool first) {
    auto& cache = impl.eq_cursors;
    // The statement the general path would build, each value a parameter "eq<k>" (the same
    // SQL text: a literal and a parameter both render as a placeholder).
    std::vector<ColumnElement> parts;
    SessionImpl::EqCursor e;
    e.mapper = &m;
    e.first = first;
    for (std::size_t k = 0; k < terms.size(); ++k) {
        const Column& col = *m.columns()[terms[k].first].column;
        parts.push_back(col.expr() == bindparam("eq" + std::to_string(k), col.type()));
        e.columns.push_back(terms[k].first);
    }
    Select stmt = query_select(m);
    if (!parts.empty()) stmt = stmt.where(and_(parts));
    if (first) stmt = stmt.limit(1);
    e.cursor = c.cursor(stmt);
    e.slots = bind_positions(e.cursor);
    constexpr std::size_t kMaxEqCursors = 64;
    if (cache.size() >= kMaxEqCursors) cache.erase(cache.begin());
    cache.push_back(std::move(e));
    return cache.end() - 1;
}

bool same_shape(const SessionImpl::EqCursor& e, const Mapper& m, const EqTerms& terms, bool first) noexcept {
    const std::size_t n = terms.size();
    if (e.mapper != &m || e.first != first || e.columns.size() != n) return false;
    const EqTerms::Term* t = terms.begin();
    for (std::size_t k = 0; k < n; ++k)
        if (e.columns[k] != t[k].first) return false;
    return true;
}

/// The session's statement of that shape, prepared if it has none (out of line: see above).
[[gnu::noinline]] std::vector<SessionImpl::EqCursor>::iterator find_eq_cursor(SessionImpl& impl, Connection& c,
                                                                               const Mapper& m, const EqTerms& terms,
                                                                               bool first) {
    auto& cache = impl.eq_cursors;
    for (auto it = cache.begin(); it != cache.end(); ++it)
        if (same_shape(*it, m, terms, first)) return it;
    return add_eq_cursor(impl, c, m, terms, first);
}
}  // namespace

namespace {
/// query_eq()'s and query_eq_first()'s start: autoflush, the session's statement of the
/// terms' shape, bound by position and executed.
[[gnu::always_inline]] inline Cursor& run_eq(SessionImpl& impl, const Mapper& m, const EqTerms& terms, bool first) {
    impl.check_usable();
    if (impl.last_loaded) impl.drop_last_loaded();  // the autoflush then has one object fewer to look at
    impl.autoflush();  // usable still when it returns (a failed flush throws)
    Connection& c = impl.opened();
    // The statement of the last query is looked at first: a loop of lookups runs the same one.
    auto& cache = impl.eq_cursors;
    auto it = cache.end() - (cache.empty() ? 0 : 1);
    if (it == cache.end() || !same_shape(*it, m, terms, first)) [[unlikely]]
        it = find_eq_cursor(impl, c, m, terms, first);
    Cursor& cur = it->cursor;
    const auto& binds = cur.compiled().binds;
    auto& ptrs = impl.get_ptrs;
    const int* slots = it->slots.data();
    const std::size_t n = it->slots.size();
    size_scratch(ptrs, n);
    const EqTerms::Term* term = terms.begin();
    for (std::size_t i = 0; i < n; ++i)
        ptrs[i] = slots[i] >= 0 ? &term[static_cast<std::size_t>(slots[i])].second : &binds[i].value;
    cur.execute(ptrs);
    return cur;
}
struct RowDone {  // the statement's read ends with this, also when loading throws
    Cursor& c;
    ~RowDone() { c.reset_row(); }
};
}  // namespace

ATHANOR_HOT std::shared_ptr<void> query_eq_first(Session& s, const Mapper& m, const EqTerms& terms) {
    SessionImpl& impl = s.impl();
    Cursor& cur = run_eq(impl, m, terms, true);
    RowDone done{cur};
    IdentityMap& map = impl.map_of(&m);
    SessionImpl::Loading loading(impl);
    auto& row = impl.eq_row;
    if (!cur.row_views(row)) return nullptr;  // LIMIT 1: one row at most, no step to the end
    return impl.load_row(m, map, row);
}

ATHANOR_HOT void query_eq(Session& s, const Mapper& m, const EqTerms& terms, bool first,
              void (*sink)(void* ctx, std::shared_ptr<void>&& obj), void* ctx) {
    if (first) {
        if (auto obj = query_eq_first(s, m, terms)) sink(ctx, std::move(obj));
        return;
    }
    SessionImpl& impl = s.impl();
    Cursor& cur = run_eq(impl, m, terms, false);
    RowDone done{cur};
    IdentityMap& map = impl.map_of(&m);
    SessionImpl::Loading loading(impl);
    auto& row = impl.eq_row;
    while (cur.next_views(row)) sink(ctx, impl.load_row(m, map, row));
}

namespace {
ATHANOR_HOT void load_each(Session& s, const Mapper& m, const Select& stmt, bool autoflush,
               void (*sink)(void* ctx, std::shared_ptr<void>&& obj), void* ctx) {
    SessionImpl& impl = s.impl();
    if (autoflush) impl.autoflush();
    Result r = impl.connection().execute(stmt);
    std::vector<ValueView> row;
    IdentityMap& map = impl.map_of(&m);
    SessionImpl::Loading loading(impl);
    while (r.fetch_views(row)) sink(ctx, impl.load_row(m, map, row));
}
}  // namespace

void query_each(Session& s, const Mapper& m, const Select& stmt,
                void (*sink)(void* ctx, std::shared_ptr<void>&& obj), void* ctx) {
    load_each(s, m, stmt, true, sink, ctx);
}

std::vector<std::shared_ptr<void>> query_all(Session& s, const Mapper& m, const Select& stmt, bool autoflush) {
    std::vector<std::shared_ptr<void>> out;
    load_each(
        s, m, stmt, autoflush,
        [](void* ctx, std::shared_ptr<void>&& obj) {
            static_cast<std::vector<std::shared_ptr<void>>*>(ctx)->push_back(std::move(obj));
        },
        &out);
    return out;
}

std::int64_t query_count(Session& s, const Select& stmt) {
    SessionImpl& impl = s.impl();
    impl.autoflush();
    return impl.connection().execute(select(func::count()).select_from(stmt.subquery())).scalar<std::int64_t>();
}

bool query_exists(Session& s, const Select& stmt) {
    SessionImpl& impl = s.impl();
    impl.autoflush();
    return impl.connection().execute(select(stmt.exists())).scalar<bool>();
}

namespace {
// The WHERE clauses of a query, reused by bulk UPDATE / DELETE.
const std::vector<ColumnElement>& criteria_of(const Select& stmt) { return stmt.where_criteria(); }

std::vector<ColumnElement> pk_columns(const Mapper& m) {
    std::vector<ColumnElement> out;
    for (std::size_t i : m.primary_key()) out.push_back(m.columns()[i].column->expr());
    return out;
}
}  // namespace

std::int64_t query_delete(Session& s, const Mapper& m, const Select& stmt, SynchronizeSession sync) {
    SessionImpl& impl = s.impl();
    impl.autoflush();
    Delete del = m.table().delete_();
    for (const auto& w : criteria_of(stmt)) del = del.where(w);
    Connection& c = impl.connection();
    bool fetch = sync == SynchronizeSession::fetch;
    if (fetch && c.dialect().supports_returning()) del = del.returning(pk_columns(m));
    Result r = c.execute(del);
    if (!fetch) return r.rowcount();
    std::int64_t n = 0;
    Values key;
    auto it = impl.identity.find(&m);
    while (r.fetch_into(key)) {
        ++n;
        if (it == impl.identity.end()) continue;
        if (InstanceState* st = it->second.find(key)) {
            impl.identity_erase(st);
            st->marked_deleted = false;
            st->state = ObjectState::deleted;
        }
    }
    return r.returns_rows() ? n : r.rowcount();
}

std::int64_t query_update(Session& s, const Mapper& m, const Select& stmt, const ValuesMap& values,
                          SynchronizeSession sync) {
    SessionImpl& impl = s.impl();
    impl.autoflush();
    Update up = m.table().update().values(values);
    for (const auto& w : criteria_of(stmt)) up = up.where(w);
    Connection& c = impl.connection();
    bool fetch = sync == SynchronizeSession::fetch;
    if (fetch && c.dialect().supports_returning()) up = up.returning(pk_columns(m));
    Result r = c.execute(up);
    if (!fetch) return r.rowcount();
    std::vector<Values> keys;
    Values key;
    while (r.fetch_into(key)) keys.push_back(key);
    // Objects of the session among the updated rows are reloaded (the SET may hold expressions).
    auto it = impl.identity.find(&m);
    if (it != impl.identity.end()) {
        for (const auto& k : keys)
            if (InstanceState* st = it->second.find(k)) {
                std::vector<ColumnElement> parts;
                for (std::size_t i = 0; i < k.size(); ++i)
                    parts.push_back(m.columns()[m.primary_key()[i]].column->expr() == k[i]);
                st->expired = true;
                Result one = c.execute(query_select(m).where(and_(parts)));
                Values row;
                if (one.fetch_into(row)) impl.load_row(m, row);
                // A changed row is the new committed state only once committed; keep the
                // rollback target as it was.
            }
    }
    return static_cast<std::int64_t>(keys.size());
}

}  // namespace athanor::detail

namespace athanor {
std::vector<Row> RowQuery::all() const { return s_->execute(stmt_).all(); }
std::optional<Row> RowQuery::first() const { return s_->execute(stmt_.limit(1)).first(); }
Row RowQuery::one() const { return s_->execute(stmt_).one(); }
}  // namespace athanor
