// Relationships in the session: instrumentation of Ref/Collection members, lazy loading,
// back_populates, the save-update and delete cascades, orphans, and foreign key sync in flush.
#include "session_impl.hpp"

#include <athanor/core/exc.hpp>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace athanor::detail {

namespace {

// Values of `idx` columns of obj (through its mapper's getters).
std::vector<Value> values_of(const Mapper& m, const void* obj, const std::vector<std::size_t>& idx) {
    std::vector<Value> out;
    out.reserve(idx.size());
    for (std::size_t i : idx) out.push_back(m.columns()[i].get(obj));
    return out;
}

// The referred and referring column indexes of a relationship's foreign key.
std::vector<std::size_t> referred_columns(const RelationshipProperty& r) {
    std::vector<std::size_t> out;
    for (auto [a, b] : r.pairs) out.push_back(a);
    return out;
}
std::vector<std::size_t> referring_columns(const RelationshipProperty& r) {
    std::vector<std::size_t> out;
    for (auto [a, b] : r.pairs) out.push_back(b);
    return out;
}


bool is_post(const RelationshipProperty& r);

// A many-to-one whose foreign key has a NULL column refers to nothing.
bool referring_null(const Mapper& m, const void* obj, const RelationshipProperty& r) {
    for (auto [a, b] : r.pairs) {
        (void)a;
        if (m.columns()[b].get(obj).is_null()) return true;
    }
    return false;
}

bool any_null(const std::vector<Value>& v) {
    for (const auto& x : v)
        if (x.is_null()) return true;
    return false;
}

SessionImpl* session_of(RelationState& rs) {
    auto s = std::static_pointer_cast<SessionImpl>(rs.session.lock());
    return s.get();  // kept alive by its Session while a member of a tracked object is used
}

[[noreturn]] void detached(const RelationshipProperty& r, const void* owner) {
    throw DetachedInstanceError("Parent instance " + describe(*r.owner, owner) +
                                " is not bound to a Session; lazy load operation of attribute '" + r.key +
                                "' cannot proceed. Load it while the session is open (query with "
                                "sa::selectinload), or keep the object in an open session.");
}

}  // namespace

void set_back(const RelationshipProperty& r, void* owner, const std::shared_ptr<void>& owner_ptr,
              const std::shared_ptr<void>& child, bool added) {
    if (!r.back) return;
    RelationMember* other = r.back->member(child.get());
    auto guard_state = other->state();
    if (guard_state) guard_state->in_change = true;
    try {
        if (!r.back->collection) {
            // child.ref = owner (or cleared)
            if (added) {
                other->erased_set_weak(owner_ptr);  // the owner's collection holds the child
                other->set_loaded(true);
            } else if (other->erased_size() && other->erased_at(0).get() == owner) {
                other->erased_assign({});
                other->set_loaded(true);
            }
        } else {
            // An unloaded collection keeps the item queued (its loaded state is unchanged).
            bool present = other->erased_contains(owner);
            if (added && !present) other->erased_append(owner_ptr);
            else if (!added && present) other->erased_remove(owner);
        }
    } catch (...) {
        if (guard_state) guard_state->in_change = false;
        throw;
    }
    if (guard_state) guard_state->in_change = false;
}

namespace {

void load_hook(RelationState& rs, RelationMember& member);
void changed_hook(RelationState& rs, const std::shared_ptr<void>& child, bool added);
void flush_hook(RelationState& rs) {
    SessionImpl* s = session_of(rs);
    if (!s || !s->find(rs.owner))
        throw InvalidRequestError("a WriteOnly collection can only be selected while its owner is in a Session");
    s->autoflush();
}

}  // namespace

void SessionImpl::instrument(InstanceState& st, Instrument how) {
    const Mapper& m = *st.mapper;
    if (!m.has_relationships()) return;
    any_relationships = true;
    if (self_weak.expired()) self_weak = std::static_pointer_cast<void>(shared_from_this());
    for (const RelationshipProperty& r : m.relationships()) {
        RelationMember* member = r.member(st.obj.get());
        any_post_update |= r.post_update || (r.back && r.back->post_update);
        RelationState* rs = &member->instrument();
        rs->prop = &r;
        rs->owner = st.obj.get();
        rs->session = self_weak;
        rs->load = &load_hook;
        rs->changed = &changed_hook;
        rs->flush = &flush_hook;
        rs->lazy = r.lazy;
        if (how != Instrument::loaded || r.write_only) continue;  // a WriteOnly never loads
        if (r.lazy == Lazy::noload) {
            member->erased_assign({});
            member->set_loaded(true);
        } else if (!r.collection && referring_null(m, st.obj.get(), r)) {
            member->erased_assign({});  // a NULL foreign key: nothing to load
            member->set_loaded(true);
        } else {
            member->set_loaded(false);
        }
    }
}

bool SessionImpl::relations_modified(const InstanceState& st) const {
    if (!st.mapper->has_relationships()) return false;
    for (const RelationshipProperty& r : st.mapper->relationships())
        if (auto rs = r.member(st.obj.get())->state(); rs && rs->modified) return true;
    return false;
}

void SessionImpl::clear_relations_modified() {
    if (!any_relationships) return;
    states.for_each([](InstanceState& st) {
        if (!st.mapper->has_relationships()) return;
        for (const RelationshipProperty& r : st.mapper->relationships()) {
            RelationMember* member = r.member(st.obj.get());
            if (auto rs = member->state()) rs->modified = false;
            if (r.write_only) member->erased_reset();  // the queued additions are rows now
        }
    });
}

bool SessionImpl::self_referential(const Mapper& m) const {
    for (const RelationshipProperty& r : m.relationships())
        if (r.target_mapper == &m) return true;
    return false;
}

std::unordered_map<const void*, std::shared_ptr<void>> SessionImpl::self_parents(const Mapper& m) {
    std::unordered_map<const void*, std::shared_ptr<void>> out;
    states.for_each([&](InstanceState& st) {
        if (st.mapper != &m || st.marked_deleted) return;
        for (const RelationshipProperty& r : m.relationships()) {
            if (r.target_mapper != &m) continue;
            RelationMember* member = r.member(st.obj.get());
            if (r.collection) {
                for (std::size_t i = 0; i < member->erased_size(); ++i)
                    if (auto c = member->erased_at(i)) out[c.get()] = st.obj;
            } else if (member->loaded() && member->erased_size()) {
                if (auto p = member->erased_at(0)) out[st.obj.get()] = p;
            }
        }
    });
    return out;
}

void SessionImpl::copy_parent_key(const Mapper& m, void* child, const void* parent) {
    for (const RelationshipProperty& r : m.relationships()) {
        if (r.target_mapper != &m) continue;
        const Mapper& referring = r.collection ? *r.target_mapper : *r.owner;
        for (auto [a, b] : r.pairs) referring.columns()[b].set(child, m.columns()[a].get(parent));
        return;
    }
}

std::vector<std::size_t> SessionImpl::order_by_level(
    const Mapper& m, const std::vector<InstanceState*>& sts,
    const std::unordered_map<const void*, std::shared_ptr<void>>& parent_of) {
    std::unordered_map<const void*, std::size_t> pending;  // object -> index
    for (std::size_t i = 0; i < sts.size(); ++i) pending.emplace(sts[i]->obj.get(), i);
    std::vector<long> level(sts.size(), -1);
    for (std::size_t i = 0; i < sts.size(); ++i) {
        // Follow the parents until a row whose level is known, or one already in the database.
        std::vector<std::size_t> chain;
        std::unordered_map<std::size_t, bool> seen;
        std::size_t cur = i;
        long base = -1;
        for (;;) {
            if (level[cur] >= 0) {
                base = level[cur];
                break;
            }
            if (seen[cur]) {
                std::string rows;
                auto from = std::find(chain.begin(), chain.end(), cur);
                for (auto it = from; it != chain.end(); ++it)
                    rows += (rows.empty() ? "" : ", ") + describe(m, sts[*it]->obj.get());
                throw CircularDependencyError("Circular dependency detected between rows " + rows +
                                              " (each is the parent of the next); flush one of them first");
            }
            seen[cur] = true;
            chain.push_back(cur);
            auto p = parent_of.find(sts[cur]->obj.get());
            if (p == parent_of.end()) break;
            auto q = pending.find(p->second.get());
            if (q == pending.end()) break;
            cur = q->second;
        }
        long l = base + 1;
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) level[*it] = l++;
    }
    std::vector<std::size_t> order(sts.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return level[a] < level[b]; });
    return order;
}

void SessionImpl::write_associations() {
    if (!any_relationships) return;
    struct Batch {
        const Table* table;
        std::vector<Params> inserts, deletes;
        std::unordered_set<std::string> seen;  // one row per pair, however many sides changed it
    };
    std::vector<Batch> batches;
    std::vector<std::pair<RelationState*, std::vector<std::shared_ptr<void>>>> done;
    auto row_of = [](const RelationshipProperty& r, const void* owner, const void* target) {
        Params p;
        for (auto [i, col] : r.secondary_owner) p.set(col->name(), r.owner->columns()[i].get(owner));
        for (auto [i, col] : r.secondary_target) p.set(col->name(), r.target_mapper->columns()[i].get(target));
        return p;
    };
    auto key_of = [](const Params& p) {
        std::vector<std::string> parts;
        for (const auto& [k, v] : p) parts.push_back(k + "=" + v.repr());
        std::sort(parts.begin(), parts.end());
        std::string s;
        for (auto& x : parts) s += x + ";";
        return s;
    };
    auto add_row = [&](const Table* t, Params p, bool insert) {
        auto it = std::find_if(batches.begin(), batches.end(), [&](const Batch& b) { return b.table == t; });
        if (it == batches.end()) it = batches.insert(batches.end(), Batch{t, {}, {}, {}});
        std::string k = (insert ? "+" : "-") + key_of(p);
        if (!it->seen.insert(std::move(k)).second) return;
        (insert ? it->inserts : it->deletes).push_back(std::move(p));
    };
    states.for_each([&](InstanceState& st) {
        if (!st.mapper->has_relationships()) return;
        for (const RelationshipProperty& r : st.mapper->relationships()) {
            if (!r.secondary || r.viewonly) continue;
            RelationMember* member = r.member(st.obj.get());
            auto rs = member->state();
            if (!rs) continue;
            bool deleting = st.marked_deleted;
            if (!deleting && !rs->modified && st.state != ObjectState::pending) continue;
            member->ensure_loaded();
            std::vector<std::shared_ptr<void>> current;
            if (!deleting)
                for (std::size_t i = 0; i < member->erased_size(); ++i) current.push_back(member->erased_at(i));
            auto has = [](const std::vector<std::shared_ptr<void>>& v, const std::shared_ptr<void>& x) {
                return std::find(v.begin(), v.end(), x) != v.end();
            };
            for (const auto& c : rs->committed)
                if (!has(current, c)) add_row(r.secondary, row_of(r, st.obj.get(), c.get()), false);
            for (const auto& c : current)
                if (!has(rs->committed, c)) add_row(r.secondary, row_of(r, st.obj.get(), c.get()), true);
            done.emplace_back(rs, std::move(current));
        }
    });
    Connection& c = connection();
    for (Batch& b : batches) {
        if (!b.deletes.empty()) {
            std::vector<ColumnElement> crit;
            for (const auto& [k, v] : b.deletes.front()) crit.push_back(b.table->column(k).expr() == bindparam(k));
            c.execute(b.table->delete_().where(and_(crit)), b.deletes);  // one batched statement
        }
        if (!b.inserts.empty()) c.execute(b.table->insert(), b.inserts);
    }
    for (auto& [rs, items] : done) rs->committed = std::move(items);
}

void SessionImpl::release_pairs(InstanceState& st) {
    if (!st.mapper->has_relationships()) return;
    for (const RelationshipProperty& r : st.mapper->relationships()) {
        if (!r.secondary) continue;
        RelationMember* member = r.member(st.obj.get());
        if (auto rs = member->state()) {
            member->erased_reset();
            rs->committed.clear();  // it holds the other side strongly too
        }
    }
}

void SessionImpl::cascade_expunge(InstanceState& st) {
    if (!st.mapper->has_relationships()) return;
    std::vector<InstanceState*> todo{&st}, seen;
    while (!todo.empty()) {
        InstanceState* cur = todo.back();
        todo.pop_back();
        for (const RelationshipProperty& r : cur->mapper->relationships()) {
            if (!r.cascade.expunge) continue;
            RelationMember* member = r.member(cur->obj.get());
            for (std::size_t i = 0; i < member->erased_size(); ++i) {  // what is loaded only
                InstanceState* cs = find(member->erased_at(i).get());
                if (cs && cs != &st && std::find(seen.begin(), seen.end(), cs) == seen.end()) {
                    seen.push_back(cs);
                    todo.push_back(cs);
                }
            }
        }
    }
    for (InstanceState* cs : seen) {
        if (cs->state == ObjectState::persistent && !cs->marked_deleted && !cs->new_in_tx) note_detached(*cs->mapper, cs->obj);
        release_pairs(*cs);
        untrack(cs);
    }
}

void SessionImpl::cascade_refresh_expire(InstanceState& st, bool refresh) {
    if (!st.mapper->has_relationships()) return;
    for (const RelationshipProperty& r : st.mapper->relationships()) {
        if (!r.cascade.refresh_expire) continue;
        RelationMember* member = r.member(st.obj.get());
        for (std::size_t i = 0; i < member->erased_size(); ++i)
            if (InstanceState* cs = find(member->erased_at(i).get()); cs && cs->state == ObjectState::persistent) {
                if (refresh && cs->snapshot) cs->mapper->write(cs->obj.get(), cs->snapshot.values());
                cs->expired = true;
                expire_relations(*cs);
            }
    }
}

void SessionImpl::expire_relations(InstanceState& st) {
    if (!st.mapper->has_relationships() || st.state != ObjectState::persistent) return;
    for (const RelationshipProperty& r : st.mapper->relationships()) {
        RelationMember* member = r.member(st.obj.get());
        if (auto rs = member->state()) {
            member->erased_reset();
            rs->committed.clear();  // loaded again with the collection
        }
    }
}

void SessionImpl::cascade_add(InstanceState& st) {
    const Mapper& m = *st.mapper;
    if (!m.has_relationships()) return;
    std::vector<InstanceState*> todo{&st};
    while (!todo.empty()) {
        InstanceState* cur = todo.back();
        todo.pop_back();
        for (const RelationshipProperty& r : cur->mapper->relationships()) {
            RelationMember* member = r.member(cur->obj.get());
            for (std::size_t i = 0; i < member->erased_size(); ++i) {
                auto child = member->erased_at(i);
                if (!child) continue;
                set_back(r, cur->obj.get(), cur->obj, child, true);
                if (!r.cascade.save_update || find(child.get())) continue;
                InstanceState& added = track(*r.target_mapper, child, ObjectState::pending);
                instrument(added, Instrument::fresh);
                todo.push_back(&added);
            }
            // A back-populated many-to-one holds its target weakly once the session tracks it
            // (its collection holds this object): no shared_ptr cycle.
            if (!r.collection && r.back && member->erased_size())
                if (auto target = member->erased_at(0);
                    target && !member->erased_weak_to(target.get()) && find(target.get()))
                    member->erased_set_weak(target);
        }
    }
}

namespace {

void load_hook(RelationState& rs, RelationMember& member) {
    const RelationshipProperty& r = *rs.prop;
    SessionImpl* s = session_of(rs);
    if (!s || !s->find(rs.owner)) detached(r, rs.owner);
    if (rs.lazy == Lazy::noload) {
        member.set_loaded(true);
        return;
    }
    if (rs.lazy == Lazy::raise)
        throw InvalidRequestError("'" + r.owner->class_name() + "." + r.key + "' is not available due to lazy='raise'");
    s->check_usable();
    if (!r.collection) {
        // Many-to-one: the identity map first (no SQL), else one SELECT by key.
        auto key = values_of(*r.owner, rs.owner, referring_columns(r));
        std::shared_ptr<void> target;
        if (!any_null(key)) {
            const auto& pk = r.target_mapper->primary_key();
            std::vector<Value> ordered(pk.size());
            bool by_pk = pk.size() == r.pairs.size();
            for (std::size_t k = 0; by_pk && k < pk.size(); ++k) {
                auto it = std::find_if(r.pairs.begin(), r.pairs.end(), [&](auto& p) { return p.first == pk[k]; });
                if (it == r.pairs.end()) by_pk = false;
                else ordered[k] = key[static_cast<std::size_t>(it - r.pairs.begin())];
            }
            if (by_pk) {
                target = s->get(*r.target_mapper, ordered);
            } else {
                std::vector<ColumnElement> crit;
                for (std::size_t k = 0; k < r.pairs.size(); ++k)
                    crit.push_back(r.target_mapper->columns()[r.pairs[k].first].column->expr() == key[k]);
                Result res = s->connection().execute(r.target_mapper->select_all().where(and_(crit)));
                std::vector<ValueView> row;
                if (res.fetch_views(row)) target = s->load_row(*r.target_mapper, s->identity[r.target_mapper], row);
            }
        }
        rs.in_change = true;
        member.erased_assign(target ? std::vector<std::shared_ptr<void>>{target} : std::vector<std::shared_ptr<void>>{});
        member.set_loaded(true);
        rs.in_change = false;
        return;
    }
    // One-to-many: SELECT the children WHERE their foreign key = the owner's key.
    s->autoflush();
    std::vector<std::shared_ptr<void>> children;
    if (r.secondary) {
        // Many-to-many: the targets joined to the association rows of the owner.
        std::vector<ColumnElement> on, where;
        for (auto [i, col] : r.secondary_target) on.push_back(r.target_mapper->columns()[i].column->expr() == col->expr());
        for (auto [i, col] : r.secondary_owner) where.push_back(col->expr() == ColumnElement(r.owner->columns()[i].get(rs.owner)));
        Select stmt = r.target_mapper->select_all().join(FromClause(*r.secondary), and_(on)).where(and_(where));
        if (r.order_by) stmt = stmt.order_by(r.target_mapper->find(r.order_by(*r.target_mapper))->column->expr());
        Result res = s->connection().execute(stmt);
        std::vector<ValueView> row;
        IdentityMap& map = s->identity[r.target_mapper];
        while (res.fetch_views(row)) children.push_back(s->load_row(*r.target_mapper, map, row));
        rs.committed = children;
    }
    auto key = values_of(*r.owner, rs.owner, referred_columns(r));
    if (!r.secondary && !any_null(key)) {
        std::vector<ColumnElement> crit;
        for (std::size_t k = 0; k < r.pairs.size(); ++k)
            crit.push_back(r.target_mapper->columns()[r.pairs[k].second].column->expr() == key[k]);
        Select stmt = r.target_mapper->select_all().where(and_(crit));
        if (r.order_by) stmt = stmt.order_by(r.target_mapper->find(r.order_by(*r.target_mapper))->column->expr());
        Result res = s->connection().execute(stmt);
        std::vector<ValueView> row;
        IdentityMap& map = s->identity[r.target_mapper];
        while (res.fetch_views(row)) children.push_back(s->load_row(*r.target_mapper, map, row));
    }
    std::shared_ptr<void> owner_ptr = s->find(rs.owner)->obj;
    rs.in_change = true;
    member.erased_assign(children);
    member.set_loaded(true);
    rs.in_change = false;
    for (const auto& c : children) set_back(r, rs.owner, owner_ptr, c, true);
}

void changed_hook(RelationState& rs, const std::shared_ptr<void>& child, bool added) {
    const RelationshipProperty& r = *rs.prop;
    rs.modified = true;
    SessionImpl* s = session_of(rs);
    InstanceState* owner = s ? s->find(rs.owner) : nullptr;
    std::shared_ptr<void> owner_ptr = owner ? owner->obj : nullptr;
    if (owner_ptr) set_back(r, rs.owner, owner_ptr, child, added);
    if (!owner || r.viewonly) return;  // not in a session (any more), or nothing to write
    if (added) {
        if (r.cascade.save_update && !s->find(child.get())) {
            InstanceState& st = s->track(*r.target_mapper, child, ObjectState::pending);
            s->instrument(st, SessionImpl::Instrument::fresh);
            s->cascade_add(st);
        }
        if (!r.collection && r.back && s->find(child.get())) {
            RelationMember* ref = r.member(rs.owner);
            ref->erased_set_weak(child);
        }
    } else if (r.collection && !r.secondary) {
        s->removals.push_back({child, owner_ptr, &r});
    } else if (!r.collection && r.back && r.back->collection && !r.back->secondary) {
        // child.parent = nullptr (or another parent): the object left the old parent's
        // collection, which is what orphans it.
        s->removals.push_back({owner_ptr, child, r.back});
    }
}

}  // namespace

void SessionImpl::cascade_deletes() {
    if (!any_relationships) return;
    // Orphans first: children taken out of a collection.
    std::vector<Removal> pending = std::move(removals);
    removals.clear();
    for (const Removal& rm : pending) {
        const RelationshipProperty& r = *rm.prop;
        InstanceState* st = find(rm.child.get());
        if (!st) continue;
        // Re-parented meanwhile (its back reference points elsewhere, or it is back in)?
        RelationMember* parent_member = r.member(rm.parent.get());
        bool back_in = false;
        for (std::size_t i = 0; i < parent_member->erased_size(); ++i) back_in |= parent_member->erased_at(i) == rm.child;
        if (back_in) continue;
        if (r.back) {
            RelationMember* ref = r.back->member(rm.child.get());
            if (ref->erased_size() && ref->erased_at(0) && ref->erased_at(0) != rm.parent) continue;
        }
        if (r.cascade.delete_orphan) {
            if (st->state == ObjectState::pending) untrack(st);  // never inserted
            else if (st->state == ObjectState::persistent) st->marked_deleted = true;
            continue;
        }
        // Without delete-orphan the child stays, its foreign key set to NULL.
        const Mapper& cm = *r.target_mapper;
        for (auto [a, b] : r.pairs) {
            (void)a;
            const ColumnProperty& p = cm.columns()[b];
            if (p.column->primary_key())
                throw FlushError("Dependency rule tried to blank-out primary key column '" + cm.table().name() + "." +
                                 p.key + "' on instance " + describe(cm, rm.child.get()));
            p.set(rm.child.get(), Value());
        }
    }
    // Deleted parents: children deleted (delete cascade) or their foreign keys nulled.
    std::vector<InstanceState*> deleted;
    states.for_each([&](InstanceState& st) {
        if (st.marked_deleted && st.mapper->has_relationships()) deleted.push_back(&st);
    });
    while (!deleted.empty()) {
        InstanceState* st = deleted.back();
        deleted.pop_back();
        for (const RelationshipProperty& r : st->mapper->relationships()) {
            if (!r.collection || r.passive_deletes || r.viewonly || r.secondary) continue;
            RelationMember* member = r.member(st->obj.get());
            std::vector<std::shared_ptr<void>> kids;
            if (r.write_only && st->state == ObjectState::persistent) {
                // A WriteOnly collection is never loaded: its rows are read for the cascade
                // (as SQLAlchemy does; passive_deletes() leaves them to ON DELETE instead).
                Result res = connection().execute(write_only_select(*member));
                std::vector<ValueView> row;
                IdentityMap& map = identity[r.target_mapper];
                while (res.fetch_views(row)) kids.push_back(load_row(*r.target_mapper, map, row));
            } else {
                member->ensure_loaded();
            }
            for (std::size_t i = 0; i < member->erased_size(); ++i) kids.push_back(member->erased_at(i));
            for (const auto& child : kids) {
                InstanceState* cs = find(child.get());
                if (!cs) continue;
                if (r.cascade.delete_) {
                    if (cs->state == ObjectState::pending) {
                        untrack(cs);
                    } else if (!cs->marked_deleted) {
                        cs->marked_deleted = true;
                        if (cs->mapper->has_relationships()) deleted.push_back(cs);
                    }
                } else if (!cs->marked_deleted) {
                    set_back(r, st->obj.get(), st->obj, child, false);  // its reference lets go too
                    for (auto [a, b] : r.pairs) {
                        (void)a;
                        const ColumnProperty& p = r.target_mapper->columns()[b];
                        if (p.column->primary_key())
                            throw FlushError("Dependency rule tried to blank-out primary key column '" +
                                             r.target_mapper->table().name() + "." + p.key + "' on instance " +
                                             describe(*r.target_mapper, child.get()));
                        p.set(child.get(), Value());
                    }
                }
            }
        }
    }
}

void SessionImpl::sync_foreign_keys(const Mapper* only) {
    if (!any_relationships) return;
    // Whether a row is being deleted: known from the pass before the flush (deletions do not
    // change during it).
    if (!only) {
        flush_any_deleted = false;
        states.for_each([&](InstanceState& st) { flush_any_deleted |= st.marked_deleted; });
    }
    const bool any_deleted = flush_any_deleted;
    states.for_each([&](InstanceState& st) {
        if (st.marked_deleted || st.state == ObjectState::deleted) return;
        // Before the flush writes anything only persistent objects have keys to copy (and only
        // their children or references can have changed); pending ones are synced per mapper.
        if (!only && st.state != ObjectState::persistent) return;
        // Many-to-one members of m's objects: FK := the target's key.
        if ((!only || st.mapper == only) && st.mapper->has_relationships()) {
            const Mapper& m = *st.mapper;
            for (const RelationshipProperty& r : m.relationships()) {
                if (r.collection || r.viewonly || is_post(r)) continue;
                RelationMember* member = r.member(st.obj.get());
                if (!member->loaded()) continue;
                auto target = member->erased_size() ? member->erased_at(0) : nullptr;
                if (!target) {
                    // Set to nullptr by the program since the last flush: the FK becomes NULL.
                    auto rs = member->state();
                    if (rs && rs->modified)
                        for (auto [a, b] : r.pairs) {
                            (void)a;
                            if (m.columns()[b].column->primary_key())
                                throw FlushError("Dependency rule tried to blank-out primary key column '" +
                                                 m.table().name() + "." + m.columns()[b].key + "' on instance " +
                                                 describe(m, st.obj.get()));
                            m.columns()[b].set(st.obj.get(), Value());
                        }
                    continue;
                }
                if (InstanceState* ts = find(target.get()); ts && (ts->marked_deleted || ts->state == ObjectState::deleted))
                    continue;  // a parent being deleted: its children's keys were dealt with
                for (auto [a, b] : r.pairs) m.columns()[b].set(st.obj.get(), r.target_mapper->columns()[a].get(target.get()));
            }
        }
        // One-to-many members whose children are m's objects: each child's FK := the owner's key.
        if (st.mapper->has_relationships()) {
            for (const RelationshipProperty& r : st.mapper->relationships()) {
                if (!r.collection || r.viewonly || is_post(r) || (only && r.target_mapper != only)) continue;
                RelationMember* member = r.member(st.obj.get());
                const Mapper& m = *r.target_mapper;
                for (std::size_t i = 0; i < member->erased_size(); ++i) {
                    auto child = member->erased_at(i);
                    if (!child) continue;
                    if (any_deleted)
                        if (InstanceState* cs = find(child.get()); cs && cs->marked_deleted) continue;
                    for (auto [a, b] : r.pairs) m.columns()[b].set(child.get(), st.mapper->columns()[a].get(st.obj.get()));
                }
            }
        }
    });
}

}  // namespace athanor::detail

namespace athanor::detail {

namespace {
// A relationship whose foreign key is written by a second UPDATE (it, or its other side, has
// post_update()).
bool is_post(const RelationshipProperty& r) { return r.post_update || (r.back && r.back->post_update); }
const Mapper& referred_mapper(const RelationshipProperty& r) { return r.collection ? *r.owner : *r.target_mapper; }
}  // namespace

void SessionImpl::check_cycles(const std::vector<const Mapper*>& order, const std::vector<InstanceState*>& pending) {
    auto pos = [&](const Mapper* m) { return std::find(order.begin(), order.end(), m) - order.begin(); };
    for (InstanceState* st : pending) {
        const Mapper& m = *st->mapper;
        if (!m.has_relationships()) continue;
        for (const RelationshipProperty& r : m.relationships()) {
            if (r.viewonly || r.secondary || is_post(r) || r.target_mapper == &m) continue;
            RelationMember* member = r.member(st->obj.get());
            for (std::size_t i = 0; i < member->erased_size(); ++i) {
                auto other = member->erased_at(i);
                InstanceState* os = other ? find(other.get()) : nullptr;
                if (!os || os->state != ObjectState::pending) continue;
                // The row that holds the foreign key must come after the row it refers to.
                bool late = r.collection ? pos(os->mapper) < pos(&m) : pos(os->mapper) > pos(&m);
                if (!late) continue;
                const InstanceState* holder = r.collection ? os : st;
                const InstanceState* referred = r.collection ? st : os;
                throw CircularDependencyError(
                    "Circular dependency detected: " + describe(*holder->mapper, holder->obj.get()) + " refers to " +
                    describe(*referred->mapper, referred->obj.get()) + ", whose table '" +
                    referred->mapper->table().name() + "' also refers to '" + holder->mapper->table().name() +
                    "'; mark one of the relationships sa::post_update() so that key is written by a later UPDATE");
            }
        }
    }
}

namespace {
// UPDATE t SET <r's foreign key columns of m> = ? WHERE <m's primary key> = ?: the statement of
// post_update, to set the key after the rows exist or to NULL it before they are deleted.
Update foreign_key_update(const Mapper& m, const RelationshipProperty& r) {
    ValuesMap set;
    for (auto [a, b] : r.pairs) {
        (void)a;
        set.items_.emplace_back(m.columns()[b].key, bindparam(m.columns()[b].key));
    }
    return m.table().update().where(primary_key_clause(m)).values(set);
}
}  // namespace

std::vector<SessionImpl::PostUpdate> SessionImpl::gather_post_updates() {
    std::vector<PostUpdate> ups;
    if (!any_relationships || !any_post_update) return ups;
    states.for_each([&](InstanceState& st) {
        if (st.marked_deleted || st.state == ObjectState::deleted || !st.mapper->has_relationships()) return;
        for (const RelationshipProperty& r : st.mapper->relationships()) {
            if (!is_post(r) || r.viewonly || r.secondary) continue;
            RelationMember* member = r.member(st.obj.get());
            auto rs = member->state();
            bool changed = st.state == ObjectState::pending || (rs && rs->modified);
            if (!r.collection) {
                if (!member->loaded() || !changed) continue;
                ups.push_back({&st, &r, member->erased_size() ? member->erased_at(0) : nullptr});
                continue;
            }
            for (std::size_t i = 0; i < member->erased_size(); ++i) {
                auto child = member->erased_at(i);
                InstanceState* cs = child ? find(child.get()) : nullptr;
                if (!cs || cs->marked_deleted) continue;
                if (changed || cs->state == ObjectState::pending) ups.push_back({cs, &r, st.obj});
            }
        }
    });
    return ups;
}

void SessionImpl::null_post_update_keys(const std::vector<PostUpdate>& ups, std::vector<ColumnUndo>& undo) {
    for (const PostUpdate& u : ups) {
        if (u.st->state != ObjectState::pending || !u.target) continue;
        const Mapper& m = *u.st->mapper;
        for (auto [a, b] : u.r->pairs) {
            (void)a;
            undo.push_back({u.st, b, m.columns()[b].get(u.st->obj.get())});
            m.columns()[b].set(u.st->obj.get(), Value());
        }
    }
}

void SessionImpl::run_post_updates(const std::vector<PostUpdate>& ups, std::vector<ColumnUndo>& undo,
                                   std::vector<InstanceState*>& touched) {
    Connection& c = connection();
    // One statement per relationship (UPDATE t SET fk=? WHERE pk=?), built once, run per row.
    std::unordered_map<const RelationshipProperty*, Update> stmts;
    auto statement_of = [&](const RelationshipProperty& r, const Mapper& m) -> const Update& {
        auto it = stmts.find(&r);
        if (it != stmts.end()) return it->second;
        return stmts.emplace(&r, foreign_key_update(m, r)).first->second;
    };
    for (const PostUpdate& u : ups) {
        const Mapper& m = *u.st->mapper;
        const Mapper& ref = referred_mapper(*u.r);
        bool differs = false;
        std::vector<Value> want;
        for (auto [a, b] : u.r->pairs) {
            want.push_back(u.target ? ref.columns()[a].get(u.target.get()) : Value());
            differs |= !(want.back() == m.columns()[b].get(u.st->obj.get()));
        }
        if (!differs) continue;
        Params params;
        for (std::size_t k = 0; k < u.r->pairs.size(); ++k) {
            const ColumnProperty& p = m.columns()[u.r->pairs[k].second];
            undo.push_back({u.st, u.r->pairs[k].second, p.get(u.st->obj.get())});
            p.set(u.st->obj.get(), want[k]);
            params.set(p.key, want[k]);
        }
        const auto& pk = m.primary_key();
        for (std::size_t k = 0; k < pk.size(); ++k)
            params.set(key_bind(k), m.columns()[pk[k]].get(u.st->obj.get()));
        Result r = c.execute(statement_of(*u.r, m), params);
        if (r.rowcount() != 1)
            throw StaleDataError("UPDATE statement on table '" + m.table().name() + "' expected to update 1 row(s); " +
                                 std::to_string(r.rowcount()) + " were matched.");
        touched.push_back(u.st);
    }
}

void SessionImpl::null_post_updates_before_delete(const std::map<const Mapper*, std::vector<InstanceState*>>& deletes) {
    if (!any_relationships || !any_post_update) return;
    Connection& c = connection();
    for (const auto& [m, sts] : deletes) {
        if (!m->has_relationships()) continue;
        for (const RelationshipProperty& r : m->relationships()) {
            if (r.collection || !is_post(r) || r.viewonly) continue;
            const auto& pk = m->primary_key();
            Update stmt = foreign_key_update(*m, r);
            for (InstanceState* st : sts) {
                bool has_ref = false;
                for (auto [a, b] : r.pairs) {
                    (void)a;
                    has_ref |= !st->snapshot.value(b).is_null();
                }
                if (!has_ref) continue;
                Params params;
                for (auto [a, b] : r.pairs) {
                    (void)a;
                    params.set(m->columns()[b].key, Value());
                }
                for (std::size_t k = 0; k < pk.size(); ++k) params.set(key_bind(k), st->snapshot.value(pk[k]));
                c.execute(stmt, params);
            }
        }
    }
}

}  // namespace athanor::detail
