// The unit of work: Session::flush(). Inserts and updates per mapper with parents before
// children, deletes children first; rows of one shape share one prepared statement (a Cursor);
// generated keys are written back; a failure undoes the whole flush.
#include "session_impl.hpp"

#include <athanor/core/exc.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace athanor::detail {

namespace {

// Columns written by post_update (table name, column name): their foreign keys do not order
// the flush.
std::set<std::pair<std::string, std::string>> post_update_columns(const std::vector<const Mapper*>& mappers) {
    std::set<std::pair<std::string, std::string>> out;
    for (const Mapper* m : mappers) {
        if (!m->has_relationships()) continue;
        for (const RelationshipProperty& r : m->relationships()) {
            if (!r.post_update) continue;
            for (const RelationshipProperty* side : {&r, r.back}) {
                if (!side) continue;
                const Mapper& referring = side->collection ? *side->target_mapper : *side->owner;
                for (auto [a, b] : side->pairs) {
                    (void)a;
                    out.emplace(referring.table().name(), referring.columns()[b].column->name());
                }
            }
        }
    }
    return out;
}

// The tables t refers to through foreign keys that order the flush.
std::vector<std::string> ordering_references(const Table& t, const std::set<std::pair<std::string, std::string>>& post) {
    if (post.empty()) return t.referred_tables();
    std::vector<std::string> out;
    for (const auto& fk : t.all_foreign_keys()) {
        if (fk.target_table() == t.name()) continue;
        bool all_post = true;
        for (const auto& c : fk.columns) all_post &= post.contains({t.name(), c});
        if (!all_post) out.push_back(fk.target_table());
    }
    return out;
}

// Mappers ordered so that a mapper comes after the mappers whose tables its table refers to.
std::vector<const Mapper*> dependency_order(std::vector<const Mapper*> mappers, bool* cyclic) {
    // post_update relationships may name mappers outside the flush's (their other side).
    std::vector<const Mapper*> related = mappers;
    for (const Mapper* m : mappers)
        if (m->has_relationships())
            for (const RelationshipProperty& r : m->relationships())
                if (std::find(related.begin(), related.end(), r.target_mapper) == related.end())
                    related.push_back(r.target_mapper);
    const auto post = post_update_columns(related);
    std::sort(mappers.begin(), mappers.end(), [](const Mapper* a, const Mapper* b) {
        return a->table().name() < b->table().name();
    });
    std::vector<const Mapper*> out;
    std::vector<bool> done(mappers.size(), false);
    while (out.size() < mappers.size()) {
        bool progressed = false;
        for (std::size_t i = 0; i < mappers.size(); ++i) {
            if (done[i]) continue;
            auto refs = ordering_references(mappers[i]->table(), post);
            bool ready = true;
            for (std::size_t j = 0; j < mappers.size(); ++j)
                if (!done[j] && j != i &&
                    std::find(refs.begin(), refs.end(), mappers[j]->table().name()) != refs.end())
                    ready = false;
            if (ready) {
                done[i] = true;
                out.push_back(mappers[i]);
                progressed = true;
            }
        }
        if (!progressed) {  // a cycle: keep the remaining order (rows that need it are refused)
            *cyclic = true;
            for (std::size_t i = 0; i < mappers.size(); ++i)
                if (!done[i]) {
                    done[i] = true;
                    out.push_back(mappers[i]);
                }
        }
    }
    return out;
}

// WHERE each primary key column = ? ("\x01pk<k>", bound from the old key), and the version
// column = ? ("\x01pk<n>", the version loaded) when the mapper has one.
std::vector<ColumnElement> key_criteria(const Mapper& m) {
    std::vector<ColumnElement> crit{primary_key_clause(m)};
    if (m.version_index() >= 0)
        crit.push_back(m.columns()[static_cast<std::size_t>(m.version_index())].column->expr() ==
                       bindparam(key_bind(m.primary_key().size())));
    return crit;
}

// `autoincrement`: c is its table's autoincrement column (the caller knows it per mapper).
bool is_unassigned_key(const Value& v, bool autoincrement) noexcept {
    if (v.is_null()) return true;
    if (!autoincrement) return false;
    if (auto i = v.if_int()) return *i == 0;  // the usual case, without building a Value(0)
    return v == Value(0);
}

// a == b, kinds first, then the common kinds' payloads (the flush asks per column of each new
// row whether its member still holds the value-initialized one; variant's own == visits both).
bool same_value(const Value& a, const Value& b) noexcept {
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Value::Kind::null: return true;
        case Value::Kind::integer: return *a.if_int() == *b.if_int();
        case Value::Kind::text: return *a.if_text() == *b.if_text();
        default: return a == b;
    }
}

// One prepared statement per (statement kind, mapper, column shape) during a flush.
struct ShapeCursor {
    Cursor cursor;
    std::vector<int> sources;  // per bind slot: >= 0 a column index, < 0 -(pk index + 1) in the old key
    bool pipelined = false;    // cursor.pipelined(), asked once (the connection's driver)
};

// Members the flush wrote, with their old values: usually one (the generated key), held
// inline (no allocation per row).
class UndoList {
public:
    /// Records member i's value as it was: a Value built in its place from `a`.
    template <class... A>
    void emplace_back(std::size_t i, A&&... a) {
        if (!has_first_) {
            first_.first = i;
            std::destroy_at(&first_.second);
            try {
                std::construct_at(&first_.second, std::forward<A>(a)...);
            } catch (...) {
                std::construct_at(&first_.second);  // a copied text out of memory: stays a valid null
                throw;
            }
            has_first_ = true;
        } else {
            more_.emplace_back(std::piecewise_construct, std::forward_as_tuple(i),
                               std::forward_as_tuple(std::forward<A>(a)...));
        }
    }
    template <class F>
    void for_each(F&& f) {
        if (has_first_) f(first_.first, first_.second);
        for (auto& [i, v] : more_) f(i, v);
    }

private:
    std::pair<std::size_t, Value> first_{};
    bool has_first_ = false;
    std::vector<std::pair<std::size_t, Value>> more_;
};

// The order of one mapper's UPDATEs and DELETEs: by primary key as the database has it (the
// snapshot's), as SQLAlchemy's unit of work sorts persistent objects (pending ones keep the
// order they were added in). Two sessions flushing the same rows then take their row locks in
// the same order, and SQLite writes its B-tree pages in key order: updated in descending key
// order, rows that shrink made SQLite rebalance pages on most UPDATEs (about 900 instructions
// more per row inside SQLite in the benchmark's orm_flush, 8% of its cost).
int compare_view(const ValueView& a, const ValueView& b) noexcept {
    using K = Value::Kind;
    if (a.kind != b.kind) {
        const bool a_num = a.kind == K::integer || a.kind == K::real;
        const bool b_num = b.kind == K::integer || b.kind == K::real;
        if (!a_num || !b_num) return a.kind < b.kind ? -1 : 1;
        const double x = a.kind == K::integer ? static_cast<double>(a.i) : a.d;
        const double y = b.kind == K::integer ? static_cast<double>(b.i) : b.d;
        return x < y ? -1 : y < x ? 1 : 0;
    }
    switch (a.kind) {
        case K::null: return 0;
        case K::integer: return a.i < b.i ? -1 : b.i < a.i ? 1 : 0;
        case K::real: return a.d < b.d ? -1 : b.d < a.d ? 1 : 0;
        case K::text:
        case K::blob: {
            const int c = a.bytes.compare(b.bytes);
            return c < 0 ? -1 : c > 0 ? 1 : 0;
        }
    }
    return 0;
}

/// Whether `a`'s row key sorts before `b`'s (a state without a snapshot last; ties, which the
/// identity map leaves only to those, by the order the states were added in).
bool key_less(const std::vector<std::size_t>& pk, const InstanceState& a, const InstanceState& b) noexcept {
    if (!a.snapshot || !b.snapshot) {
        if (a.snapshot || b.snapshot) return static_cast<bool>(a.snapshot);
        return a.add_seq < b.add_seq;
    }
    if (pk.size() == 1) {  // the usual integer key: no views
        auto x = a.snapshot.int_at(pk[0]), y = b.snapshot.int_at(pk[0]);
        if (x && y) return *x < *y || (*x == *y && a.add_seq < b.add_seq);
    }
    for (std::size_t k : pk)
        if (int c = compare_view(a.snapshot.view(k), b.snapshot.view(k))) return c < 0;
    return a.add_seq < b.add_seq;
}

/// Sorts the pointers `v` by key_less of their states. For the usual single integer key each
/// key is read from its snapshot once, into `keyed` (the caller's buffer), and pairs are
/// sorted; rows already in order cost a check, rows in reverse order a reversal.
template <class P, class StateOf>
void sort_by_key(const Mapper& m, std::vector<P*>& v, std::vector<std::pair<std::int64_t, void*>>& keyed,
                 StateOf state_of) {
    const auto& pk = m.primary_key();
    if (pk.size() == 1) {
        keyed.clear();
        for (P* x : v) {
            const InstanceState& st = *state_of(x);
            std::optional<std::int64_t> k;
            if (st.snapshot) k = st.snapshot.int_at(pk[0]);
            if (!k) break;
            keyed.emplace_back(*k, x);
        }
        if (keyed.size() == v.size()) {  // all integers, unique (the identity map's keys)
            auto by_key = [](const auto& a, const auto& b) { return a.first < b.first; };
            if (std::is_sorted(keyed.begin(), keyed.end(), by_key)) return;
            if (std::is_sorted(keyed.rbegin(), keyed.rend(), by_key)) {
                std::reverse(v.begin(), v.end());
                return;
            }
            std::sort(keyed.begin(), keyed.end(), by_key);
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<P*>(keyed[i].second);
            return;
        }
    }
    auto less = [&](P* a, P* b) { return key_less(pk, *state_of(a), *state_of(b)); };
    if (!std::is_sorted(v.begin(), v.end(), less)) std::sort(v.begin(), v.end(), less);
}

struct Work {
    // (A constructor, not aggregate initialization from emplace_back's parentheses: clang 14,
    // which builds the fuzz targets, has no parenthesized aggregate initialization.)
    Work(InstanceState* s, Values&& v, bool was_released = false) noexcept
        : st(s), values(std::move(v)), released(was_released) {}
    InstanceState* st;
    Values values;                                // current values
    UndoList undo;  // members the flush wrote, old values
    InstanceState* replaces = nullptr;            // row switch: the deleted state with the same key
    bool released = false;  // in the flush's release list: let go at its end if still unheld
};

}  // namespace

// The lists one flush hands to the next: a flush of 1000 objects fills a list of rows of about
// 140 KiB, and glibc consolidates its whole heap each time a block that large is freed (or one
// of 1 KiB or more is requested: see Borrowed).
struct FlushScratch {
    static constexpr std::size_t kLists = 4;       // lists kept
    static constexpr std::size_t kRows = 1 << 14;  // a longer list is freed (about 2 MiB)
    std::vector<std::vector<Work>> lists;
    // Lent to each flush (Borrowed): its pending objects, the rows it inserts and updates, and
    // the new objects only the session holds once written.
    std::vector<InstanceState*> pending, unheld;
    std::vector<Work*> all_inserts, all_updates, by_key;
    std::vector<std::pair<std::int64_t, void*>> keys;  // sort_by_key's
    std::vector<Work>& list_in(std::map<const Mapper*, std::vector<Work>>& by, const Mapper* m) {
        auto [it, fresh] = by.try_emplace(m);
        if (fresh && !lists.empty()) {
            it->second = std::move(lists.back());
            lists.pop_back();
        }
        return it->second;
    }
    void keep(std::vector<Work>&& works) noexcept {
        works.clear();
        if (works.capacity() == 0 || works.capacity() > kRows || lists.size() >= kLists) return;
        try {
            lists.push_back(std::move(works));
        } catch (...) {
        }
    }
};
void FlushScratchDelete::operator()(FlushScratch* p) const noexcept { delete p; }

std::string key_bind(std::size_t k) { return "\x01pk" + std::to_string(k); }

ColumnElement primary_key_clause(const Mapper& m) {
    const auto& pk = m.primary_key();
    std::vector<ColumnElement> crit;
    for (std::size_t k = 0; k < pk.size(); ++k) crit.push_back(m.columns()[pk[k]].column->expr() == bindparam(key_bind(k)));
    return crit.size() == 1 ? crit.front() : and_(crit);
}

// The autoflush of a lookup whose session tracks nothing runs only this: no registers saved,
// no stack frame (the rest is a tail call).
ATHANOR_HOT void SessionImpl::flush() {
    check_usable();
    if (flushing) return;
    if (states.size() == 0) return;  // nothing tracked: nothing to write, no event (as SQLAlchemy's clean session)
    flush_tracked();
}

[[gnu::noinline]] ATHANOR_HOT void SessionImpl::flush_tracked() {
    if (!any_relationships) {
        // The autoflush before each query mostly finds nothing to write: a look first, which
        // stops at the first object with something to write, without the flush's lists; the
        // clean objects nobody else holds are let go as below.
        Borrowed<InstanceState*> look(release_scratch);
        std::vector<InstanceState*>& unheld = look.v;
        const bool clean = states.all_of([&](InstanceState& st) {
            if (st.state == ObjectState::pending || st.marked_deleted || st.reattached) return false;
            if (st.state != ObjectState::persistent) return true;
            if (has_changes(st)) return false;
            if (st.obj.use_count() == 1 && frames.empty()) unheld.push_back(&st);
            return true;
        });
        if (clean) {
            for (InstanceState* st : unheld) untrack(st);
            return;
        }
    }
    flush_changes();
}

// Out of line: the look above is all most autoflushes run, and it stays a few cache lines.
[[gnu::noinline]] void SessionImpl::flush_changes() {
    if (any_relationships) {
        // Relationship changes become column changes first: orphans and deleted parents'
        // children, then the keys of parents already in the database into their children's
        // foreign keys (parents INSERTed by this flush are copied again once written).
        // (Loading a deleted parent's children here must not autoflush into this flush.)
        flushing = true;
        try {
            cascade_deletes();
            sync_foreign_keys(nullptr);
        } catch (...) {
            flushing = false;
            throw;
        }
        flushing = false;
    }
    // ---- gather
    std::map<const Mapper*, std::vector<Work>> inserts, updates;
    // The rows' value buffers go back to the session when the flush ends (either way): the
    // next flush reads members into them without allocating.
    if (!flush_scratch) flush_scratch.reset(new FlushScratch);
    FlushScratch& scratch = *flush_scratch;
    struct Recycle {
        SessionImpl& s;
        std::map<const Mapper*, std::vector<Work>>& a;
        std::map<const Mapper*, std::vector<Work>>& b;
        ~Recycle() {
            for (auto* m : {&a, &b})
                for (auto& [mapper, works] : *m) {
                    for (Work& w : works) s.recycle_values(std::move(w.values));
                    s.flush_scratch->keep(std::move(works));
                }
        }
    } recycle{*this, inserts, updates};
    std::map<const Mapper*, std::vector<InstanceState*>> deletes;
    Borrowed<InstanceState*> pending_buffer(scratch.pending);
    std::vector<InstanceState*>& pending = pending_buffer.v;
    // Clean persistent objects that nobody outside the session holds any more are let go, as
    // SQLAlchemy's weak identity map lets them go: nothing can change them, and the session
    // stays as large as what the program still uses. Dirty ones are flushed first.
    // (The session's buffer, handed back when the flush ends: an autoflush before each query
    // allocates nothing here.)
    Borrowed<InstanceState*> release_buffer(release_scratch);
    std::vector<InstanceState*>& release = release_buffer.v;
    bool relation_changes = false;  // a many-to-many collection changed: association rows to write
    const Mapper* updates_of = nullptr;  // the mapper of the last changed object, and its list
    std::vector<Work>* updates_into = nullptr;
    states.for_each([&](InstanceState& stp) {
        InstanceState* st = &stp;
        if (st->state == ObjectState::pending) pending.push_back(st);
        else if (st->marked_deleted) deletes[st->mapper].push_back(st);
        else if (st->state == ObjectState::persistent) {
            bool unobserved = st->obj.use_count() == 1 && frames.empty();
            if (st->reattached || has_changes(*st)) {
                if (st->mapper != updates_of) {  // objects of one class come in runs
                    updates_of = st->mapper;
                    updates_into = &scratch.list_in(updates, updates_of);
                }
                // Built in its place in the list (a Work moved in is a copy of its undo list).
                Work& w = updates_into->emplace_back(st, spare_values(), unobserved);
                st->mapper->read(st->obj.get(), w.values);
            }
            if (unobserved) release.push_back(st);
            if (any_relationships && !relation_changes && relations_modified(*st)) relation_changes = true;
        }
    });
    auto let_go = [&] {
        for (InstanceState* st : release)
            if (st->obj.use_count() == 1 && st->state == ObjectState::persistent && !st->marked_deleted)
                untrack(st);
    };
    if (pending.empty() && deletes.empty() && updates.empty() && !relation_changes) {
        let_go();
        return;
    }
    auto by_add_seq = [](auto* a, auto* b) { return a->add_seq < b->add_seq; };
    if (!std::is_sorted(pending.begin(), pending.end(), by_add_seq))  // usually they are: no n log n
        std::sort(pending.begin(), pending.end(), by_add_seq);

    std::vector<const Mapper*> mappers;
    auto note = [&](const Mapper* m) {
        if (!mappers.empty() && mappers.back() == m) return;  // a run of one class
        if (std::find(mappers.begin(), mappers.end(), m) == mappers.end()) mappers.push_back(m);
    };
    for (auto* st : pending) {
        note(st->mapper);
        // A new parent's children may be rows already: their mapper gets its turn, so that
        // the foreign key copied from the new key is written.
        if (any_relationships && st->mapper->has_relationships())
            for (const RelationshipProperty& r : st->mapper->relationships())
                if (r.collection && !r.viewonly && !r.secondary) note(r.target_mapper);
    }
    for (auto& [m, v] : updates) note(m);
    for (auto& [m, v] : deletes) note(m);
    bool cyclic = false;
    auto order = dependency_order(mappers, &cyclic);
    if (any_relationships && cyclic) check_cycles(order, pending);

    Connection& c = connection();
    flushing = true;
    Borrowed<Work*> inserts_buffer(scratch.all_inserts), updates_buffer(scratch.all_updates);
    std::vector<Work*>& all_inserts = inserts_buffer.v;
    std::vector<Work*>& all_updates = updates_buffer.v;
    all_inserts.reserve(pending.size());
    std::map<std::string, ShapeCursor> cursors;
    std::vector<const Value*> ptrs;
    std::vector<Value> key_scratch;
    std::vector<Value> defaults;
    std::vector<Value> returned;
    std::vector<InstanceState*> done_deletes;
    std::vector<PostUpdate> post_ups;
    std::vector<ColumnUndo> post_undo;
    std::vector<InstanceState*> post_touched;
    try {
        if (any_relationships) {
            post_ups = gather_post_updates();
            null_post_update_keys(post_ups, post_undo);
        }
        // ---- pending objects: events first (listeners may change them), then identity checks
        {
            std::vector<std::pair<const Mapper*, std::size_t>> counts;
            for (InstanceState* st : pending) {
                auto it = std::find_if(counts.begin(), counts.end(), [&](auto& c) { return c.first == st->mapper; });
                if (it == counts.end()) counts.emplace_back(st->mapper, 1);
                else ++it->second;
            }
            for (auto [m, n] : counts) scratch.list_in(inserts, m).reserve(n);
            const Mapper* last = nullptr;
            std::vector<Work>* into = nullptr;
            for (InstanceState* st : pending) {
                if (st->mapper->has_listeners(MapperEvent::before_insert))
                    st->mapper->dispatch(MapperEvent::before_insert, st->obj.get());
                if (st->mapper != last) {
                    last = st->mapper;
                    into = &scratch.list_in(inserts, last);
                }
                Work& w = into->emplace_back(st, spare_values());
                st->mapper->read(st->obj.get(), w.values);
            }
        }
        for (auto& [m, works] : inserts) {
            const auto& pk = m->primary_key();
            const Column* ai = m->table().autoincrement_column();
            for (Work& w : works) {
                all_inserts.push_back(&w);
                bool assigned = true;
                key_scratch.clear();
                for (std::size_t i : pk) {
                    if (is_unassigned_key(w.values[i], m->columns()[i].column == ai)) assigned = false;
                    key_scratch.push_back(w.values[i]);
                }
                if (!assigned) continue;
                auto it = identity.find(m);
                InstanceState* existing = it == identity.end() ? nullptr : it->second.find(key_scratch);
                if (!existing || existing == w.st) continue;
                if (existing->marked_deleted) {
                    w.replaces = existing;  // delete + add of the same key: one UPDATE
                    auto& d = deletes[m];
                    d.erase(std::remove(d.begin(), d.end(), existing), d.end());
                } else {
                    throw FlushError("New instance " + describe(*m, w.st->obj.get()) + " with identity key " +
                                     describe_key(key_scratch) + " conflicts with persistent instance " +
                                     describe(*m, existing->obj.get()));
                }
            }
        }
        for (auto& [m, works] : updates)
            for (Work& w : works) {
                if (m->has_listeners(MapperEvent::before_update)) {
                    m->dispatch(MapperEvent::before_update, w.st->obj.get());
                    m->read(w.st->obj.get(), w.values);
                }
            }

        // ---- saves, parents first
        std::string shape;
        std::vector<ValueView> was_row;
        // The statement of `shape` (cursors.end(): none yet). Rows of one shape follow each
        // other: the last row's, `last`, is tried first.
        auto shape_cursor = [&](std::map<std::string, ShapeCursor>::iterator last) {
            // Compared in line: a shape is a few characters, and a call to memcmp per row
            // costs more than the loop.
            auto same = [&](const std::string& a) {
                if (a.size() != shape.size()) return false;
                for (std::size_t i = 0; i < a.size(); ++i)
                    if (a[i] != shape[i]) return false;
                return true;
            };
            return last != cursors.end() && same(last->first) ? last : cursors.find(shape);
        };
        for (const Mapper* m : order) {
            cursors.clear();  // statements are per mapper; shapes key them within one
            const Table& t = m->table();
            const auto& props = m->columns();
            const auto& pk = m->primary_key();
            const int vi = m->version_index();
            if (any_relationships) {
                // Parents written above now have their keys: copy them into m's objects.
                sync_foreign_keys(m);
                if (auto it = inserts.find(m); it != inserts.end()) {
                    // Only foreign key columns were written: read those again.
                    std::vector<std::size_t> fk_cols;
                    auto note_col = [&](std::size_t i) {
                        if (std::find(fk_cols.begin(), fk_cols.end(), i) == fk_cols.end()) fk_cols.push_back(i);
                    };
                    for (const Mapper* om : order)
                        if (om->has_relationships())
                            for (const RelationshipProperty& r : om->relationships()) {
                                bool refers = r.collection ? r.target_mapper == m : om == m;
                                if (refers && !r.secondary)
                                    for (auto [a, b] : r.pairs) {
                                        (void)a;
                                        note_col(b);
                                    }
                            }
                    for (Work& w : it->second)
                        if (!w.replaces)
                            for (std::size_t i : fk_cols) w.values[i] = props[i].get(w.st->obj.get());
                }
                auto& ups = scratch.list_in(updates, m);
                std::unordered_set<const InstanceState*> queued;  // not a scan of ups per object
                for (Work& w : ups) {
                    m->read(w.st->obj.get(), w.values);
                    queued.insert(w.st);
                }
                states.for_each([&](InstanceState& st) {
                    if (st.mapper != m || st.state != ObjectState::persistent || st.marked_deleted) return;
                    if (queued.contains(&st)) return;
                    if (has_changes(st)) {
                        Work w(&st, spare_values());
                        m->read(st.obj.get(), w.values);
                        ups.push_back(std::move(w));
                    }
                });
            }
            if (auto it = updates.find(m); it != updates.end()) {
                // On a pipelining driver UPDATEs of one shape are queued and sent together;
                // each one's row count is still checked (StaleDataError), once the batch ran.
                const bool may_queue_updates = !m->has_listeners(MapperEvent::after_update);
                auto last_update = cursors.end();
                ShapeCursor* ubatch = nullptr;
                std::vector<std::int64_t> counts;
                auto drain_updates = [&] {
                    if (!ubatch) return;
                    ShapeCursor* b = ubatch;
                    ubatch = nullptr;
                    counts.clear();
                    b->cursor.flush_queue(nullptr, &counts);
                    for (std::int64_t n : counts)
                        if (n != 1)
                            throw StaleDataError("UPDATE statement on table '" + t.name() +
                                                 "' expected to update 1 row(s); " + std::to_string(n) +
                                                 " were matched.");
                };
                std::vector<char> is_key(props.size(), 0);
                for (std::size_t k : pk) is_key[k] = 1;
                Borrowed<Work*> by_key_buffer(scratch.by_key);
                std::vector<Work*>& by_key = by_key_buffer.v;
                for (Work& w : it->second) by_key.push_back(&w);
                {
                    Borrowed<std::pair<std::int64_t, void*>> keys(scratch.keys);
                    sort_by_key(*m, by_key, keys.v, [](Work* w) { return w->st; });
                }
                for (Work* wp : by_key) {
                    Work& w = *wp;
                    all_updates.push_back(&w);
                    const Snapshot& snap = w.st->snapshot;
                    shape.assign(1 + props.size(), '0');
                    shape[0] = 'U';
                    bool any = false;
                    auto old_values = snap.reader();
                    was_row.resize(props.size());  // the row as the database has it, read once
                    for (std::size_t i = 0; i < props.size(); ++i) {
                        was_row[i] = old_values.next();
                        bool changed = w.st->reattached ? !is_key[i] : !(ValueView::of(w.values[i]) == was_row[i]);
                        if (changed) shape[i + 1] = '1';
                        any |= changed;
                    }
                    key_scratch.clear();  // the row's key as the database has it
                    for (std::size_t k : pk) key_scratch.push_back(was_row[k].to_value());
                    if (!any) continue;  // a listener undid the change
                    if (vi >= 0) {
                        // The row must still hold the version we loaded; the UPDATE bumps it.
                        auto v = static_cast<std::size_t>(vi);
                        const Value was = was_row[v].to_value();
                        key_scratch.push_back(was);
                        w.undo.emplace_back(v, w.values[v]);
                        w.values[v] = Value(was.is_null() ? 1 : was.as_int() + 1);
                        column_set(props[v], w.st->obj.get(), w.values[v]);
                        shape[v + 1] = '1';
                    }
                    auto cit = shape_cursor(last_update);
                    if (cit == cursors.end()) {
                        ValuesMap set;
                        ShapeCursor sc;
                        for (std::size_t i = 0; i < props.size(); ++i)
                            if (shape[i + 1] == '1') set.items_.emplace_back(props[i].key, bindparam(props[i].key));
                        std::vector<ColumnElement> crit = key_criteria(*m);
                        Update stmt = t.update().where(and_(crit)).values(set);
                        sc.cursor = c.cursor(stmt);
                        sc.pipelined = sc.cursor.pipelined();
                        for (const auto& slot : sc.cursor.compiled().binds)
                            sc.sources.push_back(slot.key.rfind("\x01pk", 0) == 0 ? -(std::stoi(slot.key.substr(3)) + 1)
                                                                                 : m->index_of(slot.key));
                        cit = cursors.emplace(shape, std::move(sc)).first;
                    }
                    last_update = cit;
                    ShapeCursor& sc = cit->second;
                    ptrs.clear();
                    for (int src : sc.sources)
                        ptrs.push_back(src >= 0 ? &w.values[static_cast<std::size_t>(src)]
                                                : &key_scratch[static_cast<std::size_t>(-src - 1)]);
                    if (may_queue_updates && sc.pipelined) {
                        if (ubatch != &sc) drain_updates();  // one statement's queue at a time
                        ubatch = &sc;
                        sc.cursor.queue(ptrs);
                        continue;
                    }
                    sc.cursor.execute(ptrs);
                    if (sc.cursor.rowcount() != 1)
                        throw StaleDataError("UPDATE statement on table '" + t.name() +
                                             "' expected to update 1 row(s); " +
                                             std::to_string(sc.cursor.rowcount()) + " were matched.");
                    if (m->has_listeners(MapperEvent::after_update))
                        m->dispatch(MapperEvent::after_update, w.st->obj.get());
                }
                drain_updates();
            }
            if (auto it = inserts.find(m); it != inserts.end()) {
                // An adjacency list (a relationship of m to m): parents before children, each
                // row's foreign key copied from its parent just before its INSERT.
                std::unordered_map<const void*, std::shared_ptr<void>> parent_of;
                if (any_relationships && self_referential(*m)) {
                    parent_of = self_parents(*m);
                    std::vector<InstanceState*> sts;
                    for (Work& w : it->second) sts.push_back(w.st);
                    std::vector<std::size_t> order = order_by_level(*m, sts, parent_of);
                    // all_inserts points into this vector: take those out before it moves.
                    Work* first = it->second.data();
                    Work* last = first + it->second.size();
                    all_inserts.erase(std::remove_if(all_inserts.begin(), all_inserts.end(),
                                                     [&](Work* w) { return w >= first && w < last; }),
                                      all_inserts.end());
                    std::vector<Work> sorted;
                    for (std::size_t i : order) sorted.push_back(std::move(it->second[i]));
                    it->second = std::move(sorted);
                    for (Work& w : it->second) all_inserts.push_back(&w);
                }
                // On a pipelining driver (PostgreSQL) rows of one shape are queued and sent
                // together, their new keys coming back by RETURNING in the same round trips.
                // Not for adjacency lists (a child's key needs its parent's first), rows whose
                // server defaults are fetched, or mappers with after_insert listeners.
                const Column* ai = t.autoincrement_column();
                const int ai_idx = ai ? m->index_of(ai->name()) : -1;
                auto assign_key = [&](Work& w, std::int64_t key) {
                    if (ai_idx < 0) return;
                    auto idx = static_cast<std::size_t>(ai_idx);
                    Value& member = w.values[idx];
                    if (!is_unassigned_key(member, true)) return;
                    if (const std::int64_t* old = member.if_int()) {
                        // The usual case (0): the int is replaced in place, no variant assignment.
                        w.undo.emplace_back(idx, *old);
                        *const_cast<std::int64_t*>(old) = key;  // member is not const
                    } else {
                        w.undo.emplace_back(idx, member);
                        member = Value(key);
                    }
                    column_set(props[idx], w.st->obj.get(), member);
                };
                const bool may_queue = parent_of.empty() && !m->has_listeners(MapperEvent::after_insert);
                auto last_insert = cursors.end();
                const auto& initial = m->initial_values();
                ShapeCursor* batch = nullptr;
                std::vector<Work*> batch_rows;
                std::vector<std::int64_t> batch_keys;
                auto drain = [&] {
                    if (!batch) return;
                    batch_keys.clear();
                    ShapeCursor* b = batch;
                    batch = nullptr;
                    b->cursor.flush_queue(&batch_keys);
                    for (std::size_t i = 0; i < batch_rows.size() && i < batch_keys.size(); ++i)
                        assign_key(*batch_rows[i], batch_keys[i]);
                    batch_rows.clear();
                };
                for (Work& w : it->second) {
                    if (!parent_of.empty()) {
                        if (auto p = parent_of.find(w.st->obj.get()); p != parent_of.end()) {
                            copy_parent_key(*m, w.st->obj.get(), p->second.get());
                            m->read(w.st->obj.get(), w.values);
                        }
                    }
                    if (w.replaces) {
                        drain();
                        // Row switch: UPDATE the deleted row's columns that differ.
                        const Values old = w.replaces->snapshot.values();
                        ValuesMap set;
                        for (std::size_t i = 0; i < props.size(); ++i)
                            if (!(w.values[i] == old[i])) set.items_.emplace_back(props[i].key, bindparam(props[i].key));
                        if (!set.items_.empty()) {
                            Update stmt = t.update().where(primary_key_clause(*m)).values(set);
                            Cursor cur = c.cursor(stmt);
                            ptrs.clear();
                            for (const auto& slot : cur.compiled().binds)
                                ptrs.push_back(slot.key.rfind("\x01pk", 0) == 0
                                                   ? &old[pk[std::stoul(slot.key.substr(3))]]
                                                   : &w.values[static_cast<std::size_t>(m->index_of(slot.key))]);
                            cur.execute(ptrs);
                            if (cur.rowcount() != 1)
                                throw StaleDataError("UPDATE statement on table '" + t.name() +
                                                     "' expected to update 1 row(s); " +
                                                     std::to_string(cur.rowcount()) + " were matched.");
                        }
                        continue;
                    }
                    // Columns to insert: skip an unassigned autoincrement key; a member that is
                    // NULL or still holds its value-initialized value (0, "", false) takes the
                    // column's default, or is left to its server default, which RETURNING
                    // brings back into the object (SQLAlchemy's eager_defaults).
                    shape.clear();  // not shape = "I": that is a call to std::string's general replace per row
                    shape.push_back('I');
                    bool fetches = false;  // a server default to bring back (an 'S' in the shape)
                    for (std::size_t i = 0; i < props.size(); ++i) {
                        const Column& col = *props[i].column;
                        bool include = true;
                        bool unset = w.values[i].is_null() || same_value(w.values[i], initial[i]);
                        if (static_cast<int>(i) == vi && unset) {
                            w.undo.emplace_back(i, w.values[i]);
                            w.values[i] = Value(1);  // the first version, as SQLAlchemy counts
                            column_set(props[i], w.st->obj.get(), w.values[i]);
                        } else if (&col == ai && is_unassigned_key(w.values[i], true)) include = false;
                        else if (unset && col.has_default()) {
                            w.undo.emplace_back(i, w.values[i]);
                            w.values[i] = col.default_value();
                            column_set(props[i], w.st->obj.get(), w.values[i]);
                        } else if (unset && col.server_default()) {
                            include = false;
                            fetches = true;
                            shape += 'S';
                            continue;
                        }
                        shape += include ? '1' : '0';
                    }
                    auto cit = shape_cursor(last_insert);
                    if (cit == cursors.end()) {
                        Params names;
                        std::vector<ColumnElement> fetch;
                        for (std::size_t i = 0; i < props.size(); ++i) {
                            if (shape[i + 1] == '1') names.set(props[i].key, Value());
                            if (shape[i + 1] == 'S') fetch.push_back(props[i].column->expr());
                        }
                        Insert ins = t.insert();
                        if (!fetch.empty() && c.dialect().supports_returning()) ins = ins.returning(fetch);
                        ShapeCursor sc{c.cursor(ins, &names), {}};
                        sc.pipelined = sc.cursor.pipelined();
                        // Slots: a mapped column's value, or (-1) an unmapped column's default.
                        for (const auto& slot : sc.cursor.compiled().binds) sc.sources.push_back(m->index_of(slot.key));
                        cit = cursors.emplace(shape, std::move(sc)).first;
                    }
                    last_insert = cit;
                    ShapeCursor& sc = cit->second;
                    const auto& binds = sc.cursor.compiled().binds;
                    defaults.clear();
                    if (defaults.capacity() < binds.size()) defaults.reserve(binds.size());  // pointers into it stay valid
                    ptrs.clear();
                    for (std::size_t s = 0; s < binds.size(); ++s) {
                        if (sc.sources[s] >= 0) {
                            ptrs.push_back(&w.values[static_cast<std::size_t>(sc.sources[s])]);
                        } else {
                            defaults.push_back(binds[s].column ? binds[s].column->default_value() : Value());
                            ptrs.push_back(&defaults.back());
                        }
                    }
                    if (may_queue && !fetches && sc.pipelined) {
                        if (batch != &sc) drain();  // one statement's queue at a time keeps the order
                        batch = &sc;
                        sc.cursor.queue(ptrs);
                        batch_rows.push_back(&w);
                        continue;
                    }
                    drain();
                    sc.cursor.execute(ptrs);
                    if (fetches && sc.cursor.fetch_into(returned)) {
                        std::size_t r = 0;
                        for (std::size_t i = 0; i < props.size() && r < returned.size(); ++i) {
                            if (shape[i + 1] != 'S') continue;
                            w.undo.emplace_back(i, w.values[i]);
                            w.values[i] = std::move(returned[r++]);
                            column_set(props[i], w.st->obj.get(), w.values[i]);
                        }
                        while (sc.cursor.fetch_into(returned)) {
                        }
                    }
                    assign_key(w, sc.cursor.lastrowid());
                    if (m->has_listeners(MapperEvent::after_insert))
                        m->dispatch(MapperEvent::after_insert, w.st->obj.get());
                }
                drain();
            }
        }

        write_associations();
        if (!post_ups.empty()) run_post_updates(post_ups, post_undo, post_touched);
        if (any_relationships && !deletes.empty()) null_post_updates_before_delete(deletes);

        // ---- deletes, children first
        for (auto it = order.rbegin(); it != order.rend(); ++it) {
            const Mapper* m = *it;
            auto dit = deletes.find(m);
            if (dit == deletes.end() || dit->second.empty()) continue;
            const auto& pk = m->primary_key();
            Delete stmt = m->table().delete_().where(and_(key_criteria(*m)));
            Cursor cur = c.cursor(stmt);
            std::vector<int> sources;
            for (const auto& slot : cur.compiled().binds) sources.push_back(std::stoi(slot.key.substr(3)));
            {
                Borrowed<std::pair<std::int64_t, void*>> keys(scratch.keys);
                sort_by_key(*m, dit->second, keys.v, [](InstanceState* st) { return st; });
            }
            for (InstanceState* st : dit->second) {
                if (m->has_listeners(MapperEvent::before_delete)) m->dispatch(MapperEvent::before_delete, st->obj.get());
                ptrs.clear();
                key_scratch.clear();
                for (std::size_t k : pk) key_scratch.push_back(st->snapshot.value(k));
                if (m->version_index() >= 0)
                    key_scratch.push_back(st->snapshot.value(static_cast<std::size_t>(m->version_index())));
                for (int k : sources) ptrs.push_back(&key_scratch[static_cast<std::size_t>(k)]);
                cur.execute(ptrs);
                if (cur.rowcount() != 1)
                    throw StaleDataError("DELETE statement on table '" + m->table().name() +
                                         "' expected to delete 1 row(s); Only " + std::to_string(cur.rowcount()) +
                                         " were matched.");
                if (m->has_listeners(MapperEvent::after_delete)) m->dispatch(MapperEvent::after_delete, st->obj.get());
                done_deletes.push_back(st);
            }
        }
    } catch (...) {
        // Any exception, not only std::exception (a listener may throw anything): the flush is
        // undone and the session is failed until rolled back, never left half-flushed.
        flushing = false;
        cursors.clear();
        try {
            throw;
        } catch (const std::exception& e) {
            failure = e.what();
        } catch (...) {
            failure = "a non-standard exception was thrown during flush";
        }
        // Undo what the flush wrote into objects (generated keys, defaults), then the database:
        // inside a savepoint only the savepoint (SQLAlchemy), whose rollback() then restores
        // the objects; otherwise the whole transaction.
        for (auto it = post_undo.rbegin(); it != post_undo.rend(); ++it) {
            try {
                it->st->mapper->columns()[it->index].set(it->st->obj.get(), it->old);
            } catch (...) {
            }
        }
        for (Work* w : all_updates) all_inserts.push_back(w);
        for (Work* w : all_inserts)
            w->undo.for_each([&](std::size_t i, const Value& old) {
                try {
                    w->st->mapper->columns()[i].set(w->st->obj.get(), old);
                } catch (...) {
                }
            });
        bool savepoint_only = false;
        if (!frames.empty() && frames.back().tx.is_active()) {
            try {
                frames.back().tx.rollback();
                savepoint_only = true;
            } catch (...) {
            }
        }
        if (!savepoint_only) {
            try {
                c.rollback();
            } catch (...) {
            }
            frames.clear();
        }
        failed = true;
        throw;
    }
    flushing = false;
    cursors.clear();
    clear_relations_modified();

    // ---- success: new snapshots and identities
    Borrowed<InstanceState*> unheld_buffer(scratch.unheld);
    std::vector<InstanceState*>& inserted_unheld = unheld_buffer.v;
    for (Work* w : all_inserts) {
        InstanceState* st = w->st;
        if (w->replaces) untrack(w->replaces);
        st->state = ObjectState::persistent;
        st->new_in_tx = true;
        if (st->obj.use_count() == 1 && frames.empty()) {
            // Only the session holds the new object, and it holds exactly its row: a clean
            // persistent object nobody holds, which the next sweep would let go. It goes now,
            // without a copy of its row and an identity entry made only to be dropped.
            inserted_unheld.push_back(st);
            continue;
        }
        st->snapshot = Snapshot::pack(arena, w->values);
        identity_insert(st);
    }
    for (auto& [m, works] : updates)
        for (Work& w : works) {
            w.st->reattached = false;
            // Changed by the program, then dropped by it: let_go() below untracks it (it is in
            // the release list and still unheld), so no new snapshot, and no committed copy of
            // the old one, is made for it.
            if (w.released && w.st->obj.use_count() == 1) continue;
            // The map finds a state by its key: only a changed key moves it.
            bool same_key = w.st->in_identity_map && w.st->snapshot;
            for (std::size_t k : m->primary_key())
                if (same_key && !(w.st->snapshot.view(k) == ValueView::of(w.values[k]))) same_key = false;
            if (!same_key) identity_erase(w.st);
            replace_snapshot(w.st, Snapshot::pack(arena, w.values));
            if (!same_key) identity_insert(w.st);
        }
    if (!post_touched.empty()) {
        // Rows changed by a post_update UPDATE: their snapshots are what the rows hold now.
        Values now;
        for (InstanceState* st : post_touched) {
            st->mapper->read(st->obj.get(), now);
            replace_snapshot(st, Snapshot::pack(arena, now));
        }
    }
    for (InstanceState* st : done_deletes) {
        identity_erase(st);
        st->marked_deleted = false;
        st->state = ObjectState::deleted;
    }
    for (InstanceState* st : inserted_unheld) untrack(st);
    let_go();
}

}  // namespace athanor::detail
