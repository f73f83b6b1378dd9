// The instrumentation entry points of Ref and Collection: they only call the hooks the session
// installed (mapping does not depend on session).
#include <athanor/mapping/registry.hpp>
#include <athanor/mapping/relationship.hpp>

namespace athanor::detail {

void RelationMember::ensure_loaded() const {
    if (loaded_ || !state_ || !state_->load) return;
    state_->load(*state_, const_cast<RelationMember&>(*this));
}

void RelationMember::appended(const std::shared_ptr<void>& child) const {
    if (state_ && state_->changed && !state_->in_change) state_->changed(*state_, child, true);
}

void RelationMember::removed(const std::shared_ptr<void>& child) const {
    if (state_ && state_->changed && !state_->in_change) state_->changed(*state_, child, false);
}

}  // namespace athanor::detail

namespace athanor {

namespace {
const Mapper& referred(const RelationshipProperty& r) { return r.collection ? *r.owner : *r.target_mapper; }
const Mapper& referring(const RelationshipProperty& r) { return r.collection ? *r.target_mapper : *r.owner; }
}  // namespace

ColumnElement RelationshipAttr::join_condition() const {
    std::vector<ColumnElement> parts;
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
