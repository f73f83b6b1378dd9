// The instrumentation entry points of Ref and Collection: they only call the hooks the session
// installed (mapping does not depend on session).
#include <athanor/mapping/registry.hpp>
#include <athanor/mapping/relationship.hpp>

namespace athanor::detail {

void RelationMember::ensure_loaded() const {
    if (loaded_ || !instrumented_ || !state_.load) return;
    state_.load(state_, const_cast<RelationMember&>(*this));
}

void RelationMember::appended(const std::shared_ptr<void>& child) const {
    if (instrumented_ && state_.changed && !state_.in_change) state_.changed(state_, child, true);
}

std::vector<Value> ref_key(const RelationMember& member, const void* target, std::type_index type) {
    if (target) {
        for (const Registry* r : Registry::all())
            if (const Mapper* m = r->find(type)) return m->identity(target);
        throw UnmappedClassError("class '" + demangle(type.name()) + "' is not mapped");
    }
    const RelationState* st = member.state();
    if (!st || !st->prop || member.loaded()) return {};  // nothing held, and nothing to load
    std::vector<Value> out;
    bool all_null = true;
    for (auto [a, b] : st->prop->pairs) {
        (void)a;
        out.push_back(st->prop->owner->columns()[b].get(st->owner));
        all_null &= out.back().is_null();
    }
    if (all_null) out.clear();
    return out;
}

Select write_only_select(const RelationMember& member) {
    RelationState* st = member.state();
    if (!st || !st->prop)
        throw InvalidRequestError("a WriteOnly collection can only be selected while its owner is in a Session");
    const RelationshipProperty& r = *st->prop;
    auto key_of = [&] {
        std::vector<Value> key;
        for (auto [a, b] : r.pairs) key.push_back(r.owner->columns()[a].get(st->owner));
        return key;
    };
    auto missing = [&](const std::vector<Value>& key) {
        bool out = false;
        for (std::size_t i = 0; i < key.size(); ++i)
            out |= key[i].is_null() ||
                   (r.owner->columns()[r.pairs[i].first].column->autoincrement() && key[i] == Value(0));
        return out;
    };
    auto key = key_of();
    if (missing(key) && st->flush) {
        st->flush(*st);  // a pending owner gets its key (SQLAlchemy's autoflush)
        key = key_of();
    }
    if (missing(key))
        throw InvalidRequestError("the owner of WriteOnly collection '" + r.owner->class_name() + "." + r.key +
                                  "' has no primary key yet; flush the session first");
    std::vector<ColumnElement> crit;
    for (std::size_t i = 0; i < r.pairs.size(); ++i)
        crit.push_back(r.target_mapper->columns()[r.pairs[i].second].column->expr() == key[i]);
    Select stmt = r.target_mapper->select_all().where(crit.size() == 1 ? crit.front() : and_(crit));
    if (r.order_by) stmt = stmt.order_by(r.target_mapper->find(r.order_by(*r.target_mapper))->column->expr());
    return stmt;
}

void RelationMember::removed(const std::shared_ptr<void>& child) const {
    if (instrumented_ && state_.changed && !state_.in_change) state_.changed(state_, child, false);
}

}  // namespace athanor::detail

namespace athanor {

namespace {
const Mapper& referred(const RelationshipProperty& r) { return r.collection ? *r.owner : *r.target_mapper; }
const Mapper& referring(const RelationshipProperty& r) { return r.collection ? *r.target_mapper : *r.owner; }
}  // namespace

Select RelationshipAttr::join_from(const Select& stmt, bool outer) const {
    auto join = [&](const Select& s, const FromClause& f, const ColumnElement& on) {
        return outer ? s.outerjoin(f, on) : s.join(f, on);
    };
    if (!p_->secondary) return join(stmt, FromClause(target_table()), join_condition());
    // Many-to-many: through the association table.
    std::vector<ColumnElement> a, b;
    for (auto [i, col] : p_->secondary_owner) a.push_back(p_->owner->columns()[i].column->expr() == col->expr());
    for (auto [i, col] : p_->secondary_target) b.push_back(p_->target_mapper->columns()[i].column->expr() == col->expr());
    Select out = join(stmt, FromClause(*p_->secondary), a.size() == 1 ? a.front() : and_(a));
    return join(out, FromClause(target_table()), b.size() == 1 ? b.front() : and_(b));
}

ColumnElement RelationshipAttr::join_condition() const {
    std::vector<ColumnElement> parts;
    if (p_->secondary) {
        for (auto [i, col] : p_->secondary_owner) parts.push_back(p_->owner->columns()[i].column->expr() == col->expr());
        for (auto [i, col] : p_->secondary_target)
            parts.push_back(p_->target_mapper->columns()[i].column->expr() == col->expr());
    }
    for (auto [a, b] : p_->pairs)
        parts.push_back(referred(*p_).columns()[a].column->expr() == referring(*p_).columns()[b].column->expr());
    return parts.size() == 1 ? parts.front() : and_(parts);
}

const Table& RelationshipAttr::target_table() const { return p_->target_mapper->table(); }

ColumnElement RelationshipAttr::compare(const void* obj) const {
    if (p_->collection)
        throw InvalidRequestError("'" + p_->owner->class_name() + "." + p_->key +
                                  "' is a collection: compare with .any(...) or .contains(...)");
    std::vector<ColumnElement> parts;
    for (auto [a, b] : p_->pairs) {
        ColumnElement col = p_->owner->columns()[b].column->expr();
        parts.push_back(obj ? col == ColumnElement(p_->target_mapper->columns()[a].get(obj)) : col == nullptr);
    }
    return parts.size() == 1 ? parts.front() : and_(parts);
}

ColumnElement RelationshipAttr::exists_with(const ColumnElement& criterion) const {
    // Many-to-many: the association table is in the EXISTS's FROM (its condition names it).
    auto e = exists().where(join_condition());
    if (criterion.valid()) e = e.where(criterion);
    return e;
}

ColumnElement RelationshipAttr::any(const ColumnElement& criterion) const {
    if (!p_->collection)
        throw InvalidRequestError("'" + p_->owner->class_name() + "." + p_->key + "' is a reference: use .has(...)");
    return exists_with(criterion);
}

ColumnElement RelationshipAttr::has(const ColumnElement& criterion) const {
    if (p_->collection)
        throw InvalidRequestError("'" + p_->owner->class_name() + "." + p_->key + "' is a collection: use .any(...)");
    return exists_with(criterion);
}

}  // namespace athanor
