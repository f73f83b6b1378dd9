// Bulk operations: bulk_insert_mappings, bulk_update_mappings, bulk_save_objects. No identity
// map and no events; rows are grouped by the set of keys they carry and each group runs on one
// prepared statement inside the session's transaction.
#include "session_impl.hpp"

#include <athanor/core/exc.hpp>

#include <deque>
#include <unordered_map>

namespace athanor {

using detail::SessionImpl;

namespace {
// The group key of a mapping: its column names in mapper order (unknown keys are an error).
std::string shape_of(const Mapper& m, const Params& row) {
    std::string shape(m.columns().size(), '0');
    for (const auto& [k, v] : row) {
        int i = m.index_of(k);
        if (i < 0)
            throw ArgumentError("bulk mapping for '" + m.class_name() + "' has key '" + k +
                                "', which is not a mapped column of table '" + m.table().name() + "'");
        shape[static_cast<std::size_t>(i)] = '1';
    }
    return shape;
}

// The rows of one call usually carry the same keys in the same order. A row whose keys are
// those of the row before it (same names, same order, no others) reuses that row's group and
// the positions of its values: no lookup by name per row.
class KeyOrder {
public:
    bool same_as_last(const Params& row) const noexcept {
        if (!last_ || row.size() != n_) return false;
        auto a = row.begin();
        auto b = last_->begin();  // its first n_ keys (a key appended since, e.g. a fetched id, is not compared)
        for (std::size_t i = 0; i < n_; ++i, ++a, ++b)
            if (!detail::bytes_equal(a->first, b->first)) return false;  // names are short: in line
        return true;
    }
    /// Remembers `row` and where each of `keys` is in it (-1: absent).
    void remember(const Params& row, const std::vector<std::string>& keys) {
        last_ = &row;
        n_ = row.size();
        pos_.clear();
        for (const auto& k : keys) {
            int at = -1, i = 0;
            for (const auto& item : row) {
                if (item.first == k) {
                    at = i;
                    break;
                }
                ++i;
            }
            pos_.push_back(at);
        }
    }
    /// The value at position `pos` (from positions()) of a row with the remembered keys, or nullptr (-1).
    static const Value* at(const Params& row, int pos) noexcept {
        return pos < 0 ? nullptr : &(row.begin() + pos)->second;
    }
    const std::vector<int>& positions() const noexcept { return pos_; }

private:
    const Params* last_ = nullptr;
    std::size_t n_ = 0;
    std::vector<int> pos_;
};
}  // namespace

void Session::bulk_insert_impl(const Mapper& m, const std::vector<Params>& rows, bool return_defaults) {
    impl_->check_usable();
    if (rows.empty()) return;
    Connection& c = impl_->connection();
    struct Group {
        Cursor cursor;
        std::vector<std::string> keys;  // per slot: the Params key
        bool pipelined = false;         // cursor.pipelined(), asked once
    };
    std::unordered_map<std::string, Group> groups;
    std::vector<const Value*> ptrs;
    std::deque<Value> defaults;
    const Column* autoinc = m.table().autoincrement_column();
    Group* batch = nullptr;
    std::vector<const Params*> batch_rows;
    std::vector<std::int64_t> keys;
    auto drain = [&] {
        if (!batch) return;
        Group* b = batch;
        batch = nullptr;
        keys.clear();
        b->cursor.flush_queue(&keys);
        if (return_defaults && autoinc)
            for (std::size_t i = 0; i < batch_rows.size() && i < keys.size(); ++i)
                if (!batch_rows[i]->contains(autoinc->name()))
                    const_cast<Params*>(batch_rows[i])->set(autoinc->name(), Value(keys[i]));
        batch_rows.clear();
    };
    // SQLite, no keys wanted: the values of consecutive rows of one group are run as one
    // batch (Cursor::execute_many), the defaults they use kept where the batch can see them.
    std::vector<const Value*> run;
    std::deque<Value> run_defaults;
    Group* runner = nullptr;
    auto run_out = [&] {
        if (runner && !run.empty()) runner->cursor.execute_many(run);
        run.clear();
        run_defaults.clear();
        runner = nullptr;
    };
    KeyOrder order;
    // The row's value for each slot, in `out`: where the row has none, the column's default,
    // kept in `store` (a deque: what it holds stays where it is as it grows).
    auto values_of = [&order](const Params& row, const std::vector<BindSlot>& binds, std::vector<const Value*>& out,
                              std::deque<Value>& store) __attribute__((always_inline)) {  // per row: in line
        for (std::size_t s = 0; s < binds.size(); ++s) {
            const Value* v = KeyOrder::at(row, order.positions()[s]);
            if (!v) {
                store.push_back(binds[s].column ? binds[s].column->default_value() : Value());
                v = &store.back();
            }
            out.push_back(v);
        }
    };
    Group* last = nullptr;
    for (const Params& row : rows) {
        if (!last || !order.same_as_last(row)) {
            std::string shape = shape_of(m, row);
            auto it = groups.find(shape);
            if (it == groups.end()) {
                Group g{c.cursor(m.table().insert(), &row), {}, false};
                if (!return_defaults && !g.cursor.compiled().sql_without_keys.empty()) {
                    // No keys wanted: the INSERT without the RETURNING that would fetch them.
                    auto plain = std::make_shared<Compiled>(g.cursor.compiled());
                    plain->sql = plain->sql_without_keys;
                    plain->lastrowid_column = -1;
                    g.cursor = c.cursor(std::move(plain), true);
                }
                for (const auto& slot : g.cursor.compiled().binds) g.keys.push_back(slot.key);
                g.pipelined = g.cursor.pipelined();
                it = groups.emplace(std::move(shape), std::move(g)).first;
            }
            last = &it->second;
            order.remember(row, last->keys);
        }
        Group& g = *last;
        const auto& binds = g.cursor.compiled().binds;
        if (!g.pipelined && !return_defaults) {
            if (runner != &g) run_out();  // one statement's rows at a time keeps the order
            runner = &g;
            values_of(row, binds, run, run_defaults);
            continue;
        }
        ptrs.clear();
        defaults.clear();
        values_of(row, binds, ptrs, defaults);
        if (g.pipelined) {
            // PostgreSQL: rows of one shape go together (pipeline), keys back by RETURNING.
            if (batch != &g) drain();  // one statement's queue at a time keeps the order
            batch = &g;
            g.cursor.queue(ptrs);
            batch_rows.push_back(&row);
            continue;
        }
        g.cursor.execute(ptrs);
        if (return_defaults && autoinc && !row.contains(autoinc->name()))
            const_cast<Params&>(row).set(autoinc->name(), Value(g.cursor.lastrowid()));
    }
    run_out();
    drain();
}

void Session::bulk_update_impl(const Mapper& m, const std::vector<Params>& rows) {
    impl_->check_usable();
    if (rows.empty()) return;
    Connection& c = impl_->connection();
    const auto& props = m.columns();
    const auto& pk = m.primary_key();
    struct Group {
        Cursor cursor;
        std::vector<std::string> keys;
        bool pipelined = false;  // cursor.pipelined(), asked once
    };
    std::unordered_map<std::string, Group> groups;
    std::vector<const Value*> ptrs;
    Group* batch = nullptr;  // pipelining driver: the group whose executions are queued
    KeyOrder order;
    bool have_last = false;
    Group* last = nullptr;  // with have_last: the last row's group (nullptr: nothing to update)
    for (std::size_t r = 0; r < rows.size(); ++r) {
        const Params& row = rows[r];
        if (!have_last || !order.same_as_last(row)) {  // (the same keys as a checked row: checked)
            for (std::size_t k : pk)
                if (!row.contains(props[k].key))
                    throw ArgumentError("bulk_update_mappings: mapping " + std::to_string(r) + " for '" +
                                        m.class_name() + "' has no value for primary key column '" + props[k].key + "'");
            std::string shape = shape_of(m, row);
            auto it = groups.find(shape);
            last = nullptr;
            if (it == groups.end()) {
                ValuesMap set;
                for (std::size_t i = 0; i < props.size(); ++i) {
                    bool is_pk = std::find(pk.begin(), pk.end(), i) != pk.end();
                    if (shape[i] == '1' && !is_pk) set.items_.emplace_back(props[i].key, bindparam(props[i].key));
                }
                if (!set.items_.empty()) {  // else only the key: nothing to update
                    std::vector<ColumnElement> crit;
                    for (std::size_t k : pk) crit.push_back(props[k].column->expr() == bindparam(props[k].key));
                    Group g{c.cursor(m.table().update().where(and_(crit)).values(set)), {}, false};
                    for (const auto& slot : g.cursor.compiled().binds) g.keys.push_back(slot.key);
                    g.pipelined = g.cursor.pipelined();
                    last = &groups.emplace(std::move(shape), std::move(g)).first->second;
                }
            } else {
                last = &it->second;
            }
            have_last = true;
            order.remember(row, last ? last->keys : std::vector<std::string>{});
        }
        if (!last) continue;
        Group& g = *last;
        ptrs.clear();
        for (int pos : order.positions()) ptrs.push_back(KeyOrder::at(row, pos));
        if (g.pipelined) {
            if (batch != &g) {
                if (batch) batch->cursor.flush_queue();
                batch = &g;
            }
            g.cursor.queue(ptrs);
            continue;
        }
        g.cursor.execute(ptrs);
    }
    if (batch) batch->cursor.flush_queue();
}

void Session::bulk_save_impl(const Mapper* m, const std::vector<void*>& objects) {
    impl_->check_usable();
    if (!m || objects.empty()) return;
    // Objects with an assigned key that the session knows as persistent are updates; the rest
    // are inserts, with their generated keys written back.
    std::vector<Params> inserts, updates;
    std::vector<void*> insert_objs;
    std::vector<Value> vals;
    const auto& props = m->columns();
    for (void* obj : objects) {
        m->read(obj, vals);
        Params p;
        p.reserve(props.size());
        bool persistent = impl_->find(obj) && impl_->find(obj)->state == ObjectState::persistent;
        for (std::size_t i = 0; i < props.size(); ++i) {
            const Column& col = *props[i].column;
            if (!persistent && col.autoincrement() && (vals[i].is_null() || vals[i] == Value(0))) continue;
            p.set(props[i].key, std::move(vals[i]));
        }
        if (persistent) updates.push_back(std::move(p));
        else {
            inserts.push_back(std::move(p));
            insert_objs.push_back(obj);
        }
    }
    bulk_insert_impl(*m, inserts, true);
    if (const Column* ai = m->table().autoincrement_column()) {
        int idx = m->index_of(ai->name());
        if (idx >= 0)
            for (std::size_t i = 0; i < inserts.size(); ++i)
                if (const Value* v = inserts[i].find(ai->name())) props[static_cast<std::size_t>(idx)].set(insert_objs[i], *v);
    }
    bulk_update_impl(*m, updates);
}

}  // namespace athanor
