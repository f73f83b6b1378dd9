// The instrumentation entry points of Ref and Collection: they only call the hooks the session
// installed (mapping does not depend on session).
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
