// Eager loading of relationships: joinedload (LEFT OUTER JOINs in the query itself, parents
// de-duplicated), selectinload (one IN query per 500 parents, many-to-many through the
// association table), raise/noload marks, and loader options chained to nested paths.
#include "session_impl.hpp"

#include <athanor/core/exc.hpp>
#include <athanor/session/query.hpp>

#include <map>
#include <unordered_map>
#include <unordered_set>

namespace athanor::detail {

namespace {
// One IN query per 500 parents (SQLAlchemy's selectinload batch size).
constexpr std::size_t kSelectinBatch = 500;

// Assigns what an eager loader found to a member (no hooks), filling in the other side.
void assign_loaded(const RelationshipProperty& r, const std::shared_ptr<void>& parent, RelationMember* member,
                   std::vector<std::shared_ptr<void>> items) {
    if (!r.collection && items.size() > 1) items.resize(1);
    if (r.collection)
        for (const auto& c : items) set_back(r, parent.get(), parent, c, true);
    auto st = member->state();
    if (st) {
        st->in_change = true;
        if (r.secondary) st->committed = items;
    }
    member->erased_assign(std::move(items));
    member->set_loaded(true);
    if (st) st->in_change = false;
}

// selectinload of r for `parents`; returns the objects it loaded (for nested options).
std::vector<std::shared_ptr<void>> selectin_load(SessionImpl& s, const RelationshipProperty& r,
                                                 const std::vector<std::shared_ptr<void>>& parents,
                                                 bool collect = true) {
    std::vector<std::shared_ptr<void>> loaded;
    if (r.write_only) return loaded;  // never loads
    if (r.secondary ? r.secondary_owner.size() != 1 : r.pairs.size() != 1) return loaded;  // composite: lazy
    // The owner's column whose value relates it, and the target's column it is compared with.
    std::size_t owner_col = 0;
    const Mapper& tm = *r.target_mapper;
    if (r.secondary) owner_col = r.secondary_owner.front().first;
    else owner_col = r.collection ? r.pairs.front().first : r.pairs.front().second;
    // Parents whose member is not loaded yet, each with the group of its key (several
    // parents share one for a many-to-one).
    struct Todo {
        RelationMember* member;
        const std::shared_ptr<void>* parent;
        std::uint32_t group;
    };
    std::vector<Todo> todo;
    std::vector<Value> keys;  // one per group
    std::unordered_map<std::int64_t, std::uint32_t> int_group;
    std::unordered_map<std::string, std::uint32_t> other_group;
    auto group_of = [&](const Value& key, bool add) -> std::int64_t {
        if (auto i = key.if_int()) {
            auto it = int_group.find(*i);
            if (it != int_group.end()) return it->second;
            if (!add) return -1;
            int_group.emplace(*i, static_cast<std::uint32_t>(keys.size()));
        } else {
            std::string k = key.repr();
            auto it = other_group.find(k);
            if (it != other_group.end()) return it->second;
            if (!add) return -1;
            other_group.emplace(std::move(k), static_cast<std::uint32_t>(keys.size()));
        }
        keys.push_back(key);
        return static_cast<std::int64_t>(keys.size() - 1);
    };
    int_group.reserve(parents.size());
    for (const auto& p : parents) {
        RelationMember* m = r.member(p.get());
        if (m->loaded()) continue;
        Value key = r.owner->columns()[owner_col].get(p.get());
        if (key.is_null()) {
            assign_loaded(r, p, m, {});
            continue;
        }
        todo.push_back({m, &p, static_cast<std::uint32_t>(group_of(key, true))});
    }
    if (todo.empty()) return loaded;
    SessionImpl::Loading loading(s);
    std::vector<std::vector<std::shared_ptr<void>>> groups(keys.size());
    IdentityMap& map = s.identity[&tm];
    const std::size_t ncols = tm.columns().size();
    std::vector<ValueView> row, part;
    std::size_t first_batch_rows = 0;
    for (std::size_t at = 0; at < keys.size(); at += kSelectinBatch) {
        std::vector<Value> batch(keys.begin() + static_cast<std::ptrdiff_t>(at),
                                 keys.begin() + static_cast<std::ptrdiff_t>(std::min(keys.size(), at + kSelectinBatch)));
        Select stmt = tm.select_all();
        std::size_t key_at = 0;  // where the relating key is in a row
        if (r.secondary) {
            // Many-to-many: the targets joined to the association rows, the owner's key beside.
            std::vector<ColumnElement> on;
            for (auto [i, col] : r.secondary_target) on.push_back(tm.columns()[i].column->expr() == col->expr());
            const Column* sec_owner = r.secondary_owner.front().second;
            stmt = stmt.add_columns({SelectItem(sec_owner->expr())})
                       .join(FromClause(*r.secondary), on.size() == 1 ? on.front() : and_(on))
                       .where(sec_owner->expr().in_(batch));
            key_at = ncols;
        } else {
            key_at = r.collection ? r.pairs.front().second : r.pairs.front().first;
            stmt = stmt.where(tm.columns()[key_at].column->expr().in_(batch));
        }
        if (r.collection && r.order_by) stmt = stmt.order_by(tm.find(r.order_by(tm))->column->expr());
        Result res = s.connection().execute(stmt);
        if (at == kSelectinBatch && keys.size() > 2 * kSelectinBatch) {
            // As many rows per batch as the first gave: room for them all at once, instead of
            // growing the identity map step by step.
            std::size_t batches = (keys.size() + kSelectinBatch - 1) / kSelectinBatch;
            map.reserve(map.size() + first_batch_rows * (batches - 1));
        }
        while (res.fetch_views(row)) {
            if (at == 0) ++first_batch_rows;
            std::shared_ptr<void> obj;
            if (r.secondary) {
                part.assign(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(ncols));
                obj = s.load_row(tm, map, part);
            } else {
                obj = s.load_row(tm, map, row);
            }
            const ValueView& kv = row[key_at];
            std::int64_t g = -1;
            if (kv.kind == Value::Kind::integer) {
                auto it = int_group.find(kv.i);
                if (it != int_group.end()) g = it->second;
            } else {
                g = group_of(kv.to_value(), false);
            }
            if (collect) loaded.push_back(obj);
            if (g >= 0) groups[static_cast<std::size_t>(g)].push_back(std::move(obj));
        }
    }
    // A collection's group belongs to one parent (its key): moved, not copied.
    for (const Todo& t : todo)
        assign_loaded(r, *t.parent, t.member, r.collection ? std::move(groups[t.group]) : groups[t.group]);
    return loaded;
}

Lazy strategy_of(const RelationshipProperty& r, const std::vector<LoaderOption>& opts, const LoaderOption** opt) {
    Lazy lazy = r.lazy;
    *opt = nullptr;
    for (const auto& o : opts)
        if (o.prop == &r) {
            lazy = o.lazy;
            *opt = &o;
        }
    return lazy;
}

// The related objects held by the members of `parents` (each once).
std::vector<std::shared_ptr<void>> related_of(const RelationshipProperty& r, const std::vector<std::shared_ptr<void>>& parents) {
    std::vector<std::shared_ptr<void>> out;
    std::unordered_set<const void*> seen;
    for (const auto& p : parents) {
        RelationMember* m = r.member(p.get());
        if (!m->loaded()) continue;
        for (std::size_t i = 0; i < m->erased_size(); ++i)
            if (auto c = m->erased_at(i); c && seen.insert(c.get()).second) out.push_back(std::move(c));
    }
    return out;
}

void apply(SessionImpl& s, const Mapper& m, const std::vector<std::shared_ptr<void>>& objs,
           const std::vector<LoaderOption>& opts, int depth) {
    if (objs.empty()) return;
    for (const auto& o : opts)
        if (o.prop->owner != &m)
            throw ArgumentError("loader option for '" + o.prop->owner->class_name() + "." + o.prop->key +
                                "' does not apply to a query of '" + m.class_name() + "'");
    for (const RelationshipProperty& r : m.relationships()) {
        const LoaderOption* opt = nullptr;
        Lazy lazy = strategy_of(r, opts, &opt);
        std::vector<std::shared_ptr<void>> fresh;
        bool target_eager = false;
        for (const RelationshipProperty& t : r.target_mapper->relationships())
            target_eager |= t.lazy != Lazy::select;
        switch (lazy) {
            case Lazy::selectin:
            case Lazy::joined:  // what the query's joins did not load (nested paths, LIMIT)
                fresh = selectin_load(s, r, objs, target_eager && !(opt && !opt->then.empty()));
                break;
            case Lazy::raise:
            case Lazy::noload:
            case Lazy::select:
                for (const auto& p : objs)
                    if (auto st = r.member(p.get())->state()) st->lazy = lazy;
                break;
        }
        // Nested options apply to what this relationship holds; eager defaults of the loaded
        // objects' own relationships apply to what was loaded just now (a cycle stops there,
        // as an object's member loads once).
        if (opt && !opt->then.empty()) {
            apply(s, *r.target_mapper, related_of(r, objs), opt->then, depth + 1);
        } else if (!fresh.empty() && target_eager && depth < 64) {
            apply(s, *r.target_mapper, fresh, {}, depth + 1);
        }
    }
}

struct JoinedPlan {
    const RelationshipProperty* r;
    std::size_t first;  // first column of the target in a row
    std::size_t count;
};

}  // namespace

void apply_loaders(Session& session, const Mapper& m, const std::vector<std::shared_ptr<void>>& objs,
                   const std::vector<LoaderOption>& opts) {
    apply(session.impl(), m, objs, opts, 0);
}

std::vector<std::shared_ptr<void>> query_load(Session& session, const Mapper& m, const Select& stmt,
                                              const std::vector<LoaderOption>& opts) {
    SessionImpl& s = session.impl();
    // joinedload: each joined relationship's table under an alias (users_1, as SQLAlchemy names
    // them), LEFT OUTER JOINed, its columns after the parent's. A LIMIT would cut joined rows,
    // not parents: with one, collections are loaded by IN queries instead.
    bool limited = stmt.has_limit_or_offset();
    Select q = stmt;
    std::vector<JoinedPlan> plans;
    std::map<std::string, int> alias_no;
    std::size_t col = m.columns().size();
    auto alias_of = [&](const Table& t) { return t.alias(t.name() + "_" + std::to_string(++alias_no[t.name()])); };
    for (const RelationshipProperty& r : m.relationships()) {
        const LoaderOption* opt = nullptr;
        if (strategy_of(r, opts, &opt) != Lazy::joined || r.write_only || (limited && r.collection)) continue;
        const Mapper& tm = *r.target_mapper;
        FromClause target = alias_of(tm.table());
        std::vector<ColumnElement> on;
        if (r.secondary) {
            FromClause sec = alias_of(*r.secondary);
            for (auto [i, c] : r.secondary_owner) on.push_back(m.columns()[i].column->expr() == sec.c[c->name()]);
            q = q.outerjoin(sec, on.size() == 1 ? on.front() : and_(on));
            on.clear();
            for (auto [i, c] : r.secondary_target) on.push_back(target.c[tm.columns()[i].column->name()] == sec.c[c->name()]);
        } else {
            for (auto [a, b] : r.pairs)
                on.push_back(r.collection ? m.columns()[a].column->expr() == target.c[tm.columns()[b].column->name()]
                                          : target.c[tm.columns()[a].column->name()] == m.columns()[b].column->expr());
        }
        q = q.outerjoin(target, on.size() == 1 ? on.front() : and_(on));
        std::vector<SelectItem> cols;
        for (const auto& p : tm.columns()) cols.emplace_back(target.c[p.column->name()]);
        q = q.add_columns(std::move(cols));
        if (r.collection && r.order_by) q = q.order_by(target.c[tm.find(r.order_by(tm))->column->name()]);
        plans.push_back({&r, col, tm.columns().size()});
        col += tm.columns().size();
    }
    if (plans.empty()) {
        auto objs = query_all(session, m, stmt);
        apply(s, m, objs, opts, 0);
        return objs;
    }
    s.autoflush();
    Result res = s.connection().execute(q);
    std::vector<ValueView> row, part;
    IdentityMap& map = s.map_of(&m);
    const std::size_t ncols = m.columns().size();
    std::vector<std::shared_ptr<void>> out;
    std::unordered_map<const void*, std::size_t> position;  // parent -> index in out
    // Per plan, per parent: the related objects in row order, each once.
    std::vector<std::vector<std::vector<std::shared_ptr<void>>>> found(plans.size());
    struct PairHash {
        std::size_t operator()(const std::pair<const void*, const void*>& p) const noexcept {
            return std::hash<const void*>()(p.first) * 31 + std::hash<const void*>()(p.second);
        }
    };
    std::vector<std::unordered_set<std::pair<const void*, const void*>, PairHash>> seen(plans.size());
    while (res.fetch_views(row)) {
        part.assign(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(ncols));
        auto parent = s.load_row(m, map, part);
        auto [it, first_time] = position.emplace(parent.get(), out.size());
        if (first_time) {
            out.push_back(parent);
            for (auto& f : found) f.emplace_back();
        }
        for (std::size_t j = 0; j < plans.size(); ++j) {
            const JoinedPlan& p = plans[j];
            const Mapper& tm = *p.r->target_mapper;
            bool absent = true;  // the outer join found nothing: the key is NULL
            for (std::size_t k : tm.primary_key()) absent &= row[p.first + k].kind == Value::Kind::null;
            if (absent) continue;
            part.assign(row.begin() + static_cast<std::ptrdiff_t>(p.first),
                        row.begin() + static_cast<std::ptrdiff_t>(p.first + p.count));
            auto child = s.load_row(tm, s.identity[&tm], part);
            if (seen[j].insert({parent.get(), child.get()}).second) found[j][it->second].push_back(std::move(child));
        }
    }
    for (std::size_t j = 0; j < plans.size(); ++j)
        for (std::size_t i = 0; i < out.size(); ++i) {
            RelationMember* member = plans[j].r->member(out[i].get());
            if (member->loaded()) continue;  // already in the session with it loaded: kept
            assign_loaded(*plans[j].r, out[i], member, std::move(found[j][i]));
        }
    apply(s, m, out, opts, 0);  // selectin, marks, nested options of the joined ones
    return out;
}

}  // namespace athanor::detail
