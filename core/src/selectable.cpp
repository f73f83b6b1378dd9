#include "nodes.hpp"

#include <athanor/core/dialect.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/selectable.hpp>

#include <algorithm>
#include <unordered_map>

namespace athanor {

using namespace detail;

// ---- Executable -----------------------------------------------------------------------------

Executable::Executable() : cache_(std::make_shared<CompileCache>()) {}

std::string Executable::params_key(const Params*) const { return {}; }

namespace {
// The process-wide cache of compiled forms by statement shape (SQLAlchemy's compiled cache).
struct ShapeCache {
    std::mutex mutex;
    std::unordered_map<std::string, std::shared_ptr<const Compiled>> map;
};
ShapeCache& shape_cache() {
    static ShapeCache c;
    return c;
}
constexpr std::size_t kShapeCacheMax = 4096;  // then it starts over
}  // namespace

bool Executable::shape(detail::ShapeKey&) const { return false; }

std::shared_ptr<const Compiled> Executable::compile(const Dialect& dialect, const Params* params,
                                                    bool* cache_hit) const {
    std::string key = params_key(params);
    {
        std::lock_guard lock(cache_->mutex);
        for (const auto& e : cache_->entries)
            if (e.dialect == dialect.cache_id() && e.key == key) {
                if (cache_hit) *cache_hit = true;
                return e.compiled;
            }
    }
    // Not compiled for this statement object yet: another statement of the same shape may have
    // been. Its compiled form is reused with this statement's literal values.
    detail::ShapeKey sk;
    std::string full;
    if (shape(sk) && sk.cacheable) {
        full = std::to_string(dialect.cache_id()) + '\x1e' + key + '\x1e' + sk.key;
    }
    std::shared_ptr<const Compiled> c;
    bool hit = false;
    if (!full.empty()) {
        std::shared_ptr<const Compiled> found;
        {
            auto& sc = shape_cache();
            std::lock_guard lock(sc.mutex);
            auto it = sc.map.find(full);
            if (it != sc.map.end()) found = it->second;
        }
        if (found) {
            auto copy = std::make_shared<Compiled>(*found);
            const Table* t = target_table();
            if (t && copy->table) copy->table = t;
            for (BindSlot& slot : copy->binds) {
                if (slot.literal_index >= 0) slot.value = sk.literals[static_cast<std::size_t>(slot.literal_index)]->value;
                if (slot.column && t) slot.column = t->find_column(slot.key);
            }
            c = std::move(copy);
            hit = true;
        }
    }
    if (!c) {
        std::shared_ptr<Compiled> fresh = do_compile(dialect, params);
        bool ok = !full.empty();
        if (ok) {
            std::unordered_map<const void*, int> index;
            for (std::size_t i = 0; i < sk.literals.size(); ++i) index.emplace(sk.literals[i], static_cast<int>(i));
            for (BindSlot& slot : fresh->binds) {
                if (!slot.origin) continue;
                auto it = index.find(slot.origin);
                if (it == index.end()) ok = false;
                else slot.literal_index = it->second;
            }
        }
        for (BindSlot& slot : fresh->binds) slot.origin = nullptr;
        if (ok) {
            auto& sc = shape_cache();
            std::lock_guard lock(sc.mutex);
            if (sc.map.size() >= kShapeCacheMax) sc.map.clear();
            sc.map.emplace(std::move(full), fresh);
        }
        c = std::move(fresh);
    }
    if (cache_hit) *cache_hit = hit;
    std::lock_guard lock(cache_->mutex);
    constexpr std::size_t kMaxEntries = 16;  // parameter-name sets seen for one statement
    if (cache_->entries.size() >= kMaxEntries) cache_->entries.erase(cache_->entries.begin());
    cache_->entries.push_back({dialect.cache_id(), std::move(key), c});
    return c;
}

bool Select::shape(detail::ShapeKey& out) const {
    shape_select(*data_, out);
    return out.cacheable;
}

bool CompoundSelect::shape(detail::ShapeKey& out) const {
    shape_compound(*data_, out);
    return out.cacheable;
}

namespace {
void shape_values(const std::vector<std::pair<std::string, ColumnElement>>& values, detail::ShapeKey& k) {
    k.key += 'v';
    k.key += std::to_string(values.size());
    for (const auto& [name, e] : values) {
        shape_name(k.key, name);
        shape_expr(e.node(), k);
    }
}
// INSERT and UPDATE list columns in table order, and INSERT adds columns with defaults: the
// whole column list is part of their shape.
void shape_table(const Table& t, detail::ShapeKey& k) {
    shape_name(k.key, t.name());
    k.key += std::to_string(t.columns().size());
    for (const auto& c : t.columns()) {
        shape_name(k.key, c->name());
        k.key += c->has_default() ? 'd' : '-';
    }
}
void shape_list(const std::vector<ColumnElement>& v, detail::ShapeKey& k, char tag) {
    k.key += tag;
    k.key += std::to_string(v.size());
    for (const auto& e : v) shape_expr(e.node(), k);
}
}  // namespace

bool Insert::shape(detail::ShapeKey& out) const {
    if (!data_->multi.empty()) return false;  // multi-row VALUES carry their values in the SQL shape
    out.key += 'I';
    shape_table(*data_->table, out);
    shape_values(data_->values, out);
    shape_list(data_->returning, out, 'r');
    return out.cacheable;
}

bool Update::shape(detail::ShapeKey& out) const {
    out.key += 'U';
    shape_table(*data_->table, out);
    shape_values(data_->values, out);
    shape_list(data_->where, out, 'w');
    shape_list(data_->returning, out, 'r');
    return out.cacheable;
}

bool Delete::shape(detail::ShapeKey& out) const {
    out.key += 'D';
    shape_name(out.key, data_->table->name());
    shape_list(data_->where, out, 'w');
    shape_list(data_->returning, out, 'r');
    return out.cacheable;
}

std::string Executable::to_string() const { return to_string(default_dialect()); }
std::string Executable::to_string(const Dialect& dialect) const {
    return do_compile(dialect, nullptr)->sql;
}

// ---- text -----------------------------------------------------------------------------------

TextClause::TextClause(std::string text) : text_(std::move(text)) {}
TextClause text(std::string sql) { return TextClause(std::move(sql)); }

std::shared_ptr<Compiled> TextClause::do_compile(const Dialect& dialect, const Params*) const {
    auto c = std::make_shared<Compiled>();
    c->kind = Compiled::Kind::text;
    const std::string& t = text_;
    std::string& out = c->sql;
    out.reserve(t.size());
    bool in_quote = false;
    for (std::size_t i = 0; i < t.size(); ++i) {
        char ch = t[i];
        if (ch == '\'') in_quote = !in_quote;
        if (!in_quote && ch == '\\' && i + 1 < t.size() && t[i + 1] == ':') {
            out += ':';  // "\:" is a literal colon
            ++i;
            continue;
        }
        bool starts_name = i + 1 < t.size() &&
                           (std::isalpha(static_cast<unsigned char>(t[i + 1])) || t[i + 1] == '_');
        bool after_colon = i > 0 && t[i - 1] == ':';
        bool before_colon = i + 1 < t.size() && t[i + 1] == ':';
        if (!in_quote && ch == ':' && starts_name && !after_colon && !before_colon) {
            std::size_t j = i + 1;
            while (j < t.size() && (std::isalnum(static_cast<unsigned char>(t[j])) || t[j] == '_')) ++j;
            BindSlot slot;
            slot.source = BindSlot::Source::param;
            slot.key = t.substr(i + 1, j - i - 1);
            out += dialect.bind_placeholder(c->binds.size());
            c->binds.push_back(std::move(slot));
            i = j - 1;
            continue;
        }
        out += ch;
    }
    return c;
}

// ---- select ---------------------------------------------------------------------------------

SelectItem::SelectItem(const Table& t) : columns_(t.c.all()), from_(t.from_node()) {}
SelectItem::SelectItem(const FromClause& f) : columns_(f.c.all()), from_(f.node()) {}

Select::Select() : data_(std::make_shared<SelectData>()) {}
Select::Select(std::shared_ptr<SelectData> d) : data_(std::move(d)) {}
Select::Select(std::vector<SelectItem> items) : Select() {
    auto d = std::make_shared<SelectData>();
    for (auto& item : items) {
        for (auto& c : item.columns_) d->columns.push_back(c);
        // A selected join keeps its ON clause.
        if (item.from_ && item.from_->kind == FromKind::join) d->froms.push_back(item.from_);
    }
    data_ = std::move(d);
}
Select select(std::vector<SelectItem> items) { return Select(std::move(items)); }

std::shared_ptr<SelectData> Select::copy() const { return std::make_shared<SelectData>(*data_); }

Select Select::where(const ColumnElement& criterion) const {
    (void)criterion.node();
    auto d = copy();
    d->where.push_back(criterion);
    return Select(d);
}
Select Select::order_by(std::vector<ColumnElement> clauses) const {
    auto d = copy();
    for (auto& c : clauses) d->order_by.push_back(c);
    return Select(d);
}
Select Select::group_by(std::vector<ColumnElement> clauses) const {
    auto d = copy();
    for (auto& c : clauses) d->group_by.push_back(c);
    return Select(d);
}
Select Select::having(const ColumnElement& criterion) const {
    auto d = copy();
    d->having.push_back(criterion);
    return Select(d);
}
Select Select::limit(std::int64_t n) const {
    auto d = copy();
    d->limit = n;
    return Select(d);
}
Select Select::offset(std::int64_t n) const {
    auto d = copy();
    d->offset = n;
    return Select(d);
}
Select Select::distinct(bool on) const {
    auto d = copy();
    d->distinct = on;
    return Select(d);
}
Select Select::select_from(const FromClause& from) const {
    auto d = copy();
    d->froms.push_back(from.node());
    return Select(d);
}
Select Select::add_columns(std::vector<SelectItem> items) const {
    auto d = copy();
    for (auto& item : items)
        for (auto& c : item.columns_) d->columns.push_back(c);
    return Select(d);
}

Select Select::with_only_columns(std::vector<SelectItem> items) const {
    auto d = copy();
    if (d->froms.empty()) {
        // Keep the FROM the replaced columns implied (Query.with_entities over a mapped table).
        for (const auto& c : d->columns) collect_froms(c.node(), d->froms);
    }
    d->columns.clear();
    for (auto& item : items)
        for (auto& c : item.columns_) d->columns.push_back(c);
    return Select(d);
}

namespace {
// The FROM a join without explicit left side starts from: the last explicit FROM if any, else
// the first FROM of the selected columns.
FromPtr leftmost(const SelectData& d, std::size_t& replace_index) {
    if (!d.froms.empty()) {
        replace_index = d.froms.size() - 1;
        return d.froms.back();
    }
    replace_index = static_cast<std::size_t>(-1);
    std::vector<FromPtr> fs;
    for (const auto& c : d.columns) collect_froms(c.node(), fs);
    if (fs.empty()) throw ArgumentError("join(): the statement has no FROM to join from");
    return fs.front();
}

Select join_impl(const Select& s, const SelectData& d, const FromPtr* left, const FromClause& right,
                 const ColumnElement& on, bool outer, std::shared_ptr<SelectData> copy) {
    std::size_t replace = static_cast<std::size_t>(-1);
    FromPtr l = left ? *left : leftmost(d, replace);
    if (left) {
        for (std::size_t i = 0; i < copy->froms.size(); ++i)
            if (copy->froms[i] == *left) replace = i;
    }
    FromPtr j = make_join(l, right.node(), on, outer);
    if (replace != static_cast<std::size_t>(-1)) copy->froms[replace] = j;
    else copy->froms.push_back(j);
    (void)s;
    return Select(copy);
}
}  // namespace

Select Select::join(const FromClause& right, const ColumnElement& on) const {
    return join_impl(*this, *data_, nullptr, right, on, false, copy());
}
Select Select::outerjoin(const FromClause& right, const ColumnElement& on) const {
    return join_impl(*this, *data_, nullptr, right, on, true, copy());
}
Select Select::join_from(const FromClause& left, const FromClause& right, const ColumnElement& on) const {
    FromPtr l = left.node();
    return join_impl(*this, *data_, &l, right, on, false, copy());
}
Select Select::outerjoin_from(const FromClause& left, const FromClause& right,
                              const ColumnElement& on) const {
    FromPtr l = left.node();
    return join_impl(*this, *data_, &l, right, on, true, copy());
}

FromClause Select::subquery(std::string name) const {
    FromNode n{};
    n.kind = FromKind::subquery;
    n.name = std::move(name);
    n.select = data_;
    int anon = 0;
    for (const auto& c : data_->columns) {
        std::string k = c.key();
        if (k.empty()) k = "anon_" + std::to_string(++anon);
        n.column_names.push_back(k);
        n.column_types.push_back(c.type());
    }
    return FromClause(std::make_shared<const FromNode>(std::move(n)));
}

ColumnElement Select::scalar_subquery() const {
    if (data_->columns.size() != 1)
        throw ArgumentError("scalar_subquery() needs a SELECT of exactly one column, not " +
                            std::to_string(data_->columns.size()));
    ExprNode n{};
    n.kind = ExprKind::scalar_subquery;
    n.type = data_->columns.front().type();
    n.select = data_;
    return ColumnElement(std::make_shared<const ExprNode>(std::move(n)));
}

ColumnElement Select::exists() const {
    ExprNode n{};
    n.kind = ExprKind::exists;
    n.type = Boolean();
    n.select = data_;
    return ColumnElement(std::make_shared<const ExprNode>(std::move(n)));
}

const std::vector<ColumnElement>& Select::selected_columns() const { return data_->columns; }
const std::vector<ColumnElement>& Select::where_criteria() const { return data_->where; }
bool Select::has_limit_or_offset() const noexcept { return data_->limit.has_value() || data_->offset.has_value(); }

ExistsBuilder ExistsBuilder::where(const ColumnElement& criterion) const {
    ExistsBuilder b = *this;
    b.where_.push_back(criterion);
    return b;
}
ColumnElement ExistsBuilder::expr() const {
    auto d = std::make_shared<SelectData>();
    d->star = true;
    d->where = where_;
    return Select(std::move(d)).exists();
}
ExistsBuilder::operator ColumnElement() const { return expr(); }
ExistsBuilder exists() { return {}; }
ColumnElement exists(const Select& s) { return s.exists(); }

// ---- compound -------------------------------------------------------------------------------

CompoundSelect::CompoundSelect(std::string keyword, std::vector<Select> selects) {
    if (selects.size() < 2) throw ArgumentError(keyword + " needs at least two SELECTs");
    auto d = std::make_shared<CompoundData>();
    d->keyword = std::move(keyword);
    d->selects = std::move(selects);
    data_ = std::move(d);
}
CompoundSelect::CompoundSelect(std::shared_ptr<CompoundData> d) : data_(std::move(d)) {}
CompoundSelect CompoundSelect::order_by(std::vector<ColumnElement> clauses) const {
    auto d = std::make_shared<CompoundData>(*data_);
    for (auto& c : clauses) d->order_by.push_back(c);
    return CompoundSelect(d);
}
CompoundSelect CompoundSelect::limit(std::int64_t n) const {
    auto d = std::make_shared<CompoundData>(*data_);
    d->limit = n;
    return CompoundSelect(d);
}
CompoundSelect CompoundSelect::offset(std::int64_t n) const {
    auto d = std::make_shared<CompoundData>(*data_);
    d->offset = n;
    return CompoundSelect(d);
}
FromClause CompoundSelect::subquery(std::string name) const {
    FromNode n{};
    n.kind = FromKind::subquery;
    n.name = std::move(name);
    n.compound = data_;
    for (const auto& c : data_->selects.front().selected_columns()) {
        n.column_names.push_back(c.key());
        n.column_types.push_back(c.type());
    }
    return FromClause(std::make_shared<const FromNode>(std::move(n)));
}

// ---- insert / update / delete ---------------------------------------------------------------

ValuesMap::ValuesMap(const Params& p) {
    for (const auto& [k, v] : p) items_.emplace_back(k, ColumnElement(v));
}

namespace {
void merge_values(std::vector<std::pair<std::string, ColumnElement>>& into,
                  const ValuesMap& values) {
    for (const auto& [k, v] : values.items_) {
        bool replaced = false;
        for (auto& [ek, ev] : into)
            if (ek == k) {
                ev = v;
                replaced = true;
            }
        if (!replaced) into.emplace_back(k, v);
    }
}

std::string param_names_key(const Params* params) {
    if (!params) return {};
    std::string key;
    for (const auto& [k, v] : *params) {
        key += k;
        key += '\x1f';
    }
    return key;
}
}  // namespace

Insert::Insert(const Table& table) {
    auto d = std::make_shared<InsertData>();
    d->table = &table;
    data_ = std::move(d);
}
Insert::Insert(std::shared_ptr<InsertData> d) : data_(std::move(d)) {}
const Table& Insert::table() const noexcept { return *data_->table; }
Insert Insert::values(const ValuesMap& values) const {
    auto d = std::make_shared<InsertData>(*data_);
    for (const auto& [k, v] : values.items_) data_->table->column(k);
    merge_values(d->values, values);
    return Insert(d);
}
Insert Insert::values(const std::vector<Params>& rows) const {
    if (rows.empty()) throw ArgumentError("insert().values() got an empty list of rows");
    auto d = std::make_shared<InsertData>(*data_);
    d->multi = rows;
    return Insert(d);
}
Insert Insert::returning(std::vector<ColumnElement> cols) const {
    auto d = std::make_shared<InsertData>(*data_);
    d->returning = std::move(cols);
    return Insert(d);
}
std::string Insert::params_key(const Params* params) const { return param_names_key(params); }

Update::Update(const Table& table) {
    auto d = std::make_shared<UpdateData>();
    d->table = &table;
    data_ = std::move(d);
}
Update::Update(std::shared_ptr<UpdateData> d) : data_(std::move(d)) {}
const Table& Update::table() const noexcept { return *data_->table; }
Update Update::where(const ColumnElement& criterion) const {
    (void)criterion.node();
    auto d = std::make_shared<UpdateData>(*data_);
    d->where.push_back(criterion);
    return Update(d);
}
Update Update::values(const ValuesMap& values) const {
    auto d = std::make_shared<UpdateData>(*data_);
    for (const auto& [k, v] : values.items_) data_->table->column(k);
    merge_values(d->values, values);
    return Update(d);
}
Update Update::returning(std::vector<ColumnElement> cols) const {
    auto d = std::make_shared<UpdateData>(*data_);
    d->returning = std::move(cols);
    return Update(d);
}
std::string Update::params_key(const Params* params) const { return param_names_key(params); }

Delete::Delete(const Table& table) {
    auto d = std::make_shared<DeleteData>();
    d->table = &table;
    data_ = std::move(d);
}
Delete::Delete(std::shared_ptr<DeleteData> d) : data_(std::move(d)) {}
const Table& Delete::table() const noexcept { return *data_->table; }
Delete Delete::where(const ColumnElement& criterion) const {
    (void)criterion.node();
    auto d = std::make_shared<DeleteData>(*data_);
    d->where.push_back(criterion);
    return Delete(d);
}
Delete Delete::returning(std::vector<ColumnElement> cols) const {
    auto d = std::make_shared<DeleteData>(*data_);
    d->returning = std::move(cols);
    return Delete(d);
}

}  // namespace athanor
