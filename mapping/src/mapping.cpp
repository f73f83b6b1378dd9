#include <athanor/core/detail/hot.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/mapping/mapper.hpp>
#include <athanor/mapping/record.hpp>
#include <athanor/mapping/registry.hpp>

#include <algorithm>
#include <cxxabi.h>
#include <cstdlib>

namespace athanor {

// ---- Mapper ---------------------------------------------------------------------------------

Mapper::Mapper(const Table& table, std::type_index type, std::string class_name,
               std::function<std::shared_ptr<void>()> factory, bool dynamic)
    : table_(&table), type_(type), class_name_(std::move(class_name)), factory_(std::move(factory)),
      dynamic_(dynamic) {}

void Mapper::add_property(ColumnProperty p) {
    if (!p.equals) {
        auto get = p.get;
        p.equals = [get](const void* obj, const ValueView& v) { return ValueView::of(get(obj)) == v; };
    }
    if (!p.set_view) {
        auto set = p.set;
        p.set_view = [set](void* obj, const ValueView& v) { set(obj, v.to_value()); };
    }
    if (find(p.key))
        throw ArgumentError("column '" + table_->name() + "." + p.key + "' is already mapped for class '" +
                            class_name_ + "'");
    // Keep table order, so loads and inserts list columns the way the table does.
    auto pos = std::find_if(props_.begin(), props_.end(), [&](const ColumnProperty& q) {
        return q.column->position() > p.column->position();
    });
    std::string version_key = version_index_ >= 0 ? props_[static_cast<std::size_t>(version_index_)].key : "";
    props_.insert(pos, std::move(p));
    if (!version_key.empty()) version_index_ = index_of(version_key);
    pk_.clear();
    for (const Column* pkc : table_->primary_key())
        for (std::size_t i = 0; i < props_.size(); ++i)
            if (props_[i].column == pkc) pk_.push_back(i);
}

const ColumnProperty* Mapper::find(std::string_view name) const noexcept {
    for (const auto& p : props_)
        if (p.key == name) return &p;
    return nullptr;
}

void Mapper::set_version_column(std::string_view name) {
    int i = index_of(name);
    if (i < 0)
        throw ArgumentError("version_id_col: column '" + table_->name() + "." + std::string(name) +
                            "' is not mapped for class '" + class_name_ + "' (map it first)");
    const Column& c = *props_[static_cast<std::size_t>(i)].column;
    if (!c.type().is_integer())
        throw ArgumentError("version_id_col: column '" + table_->name() + "." + c.name() + "' must be an integer");
    if (c.primary_key())
        throw ArgumentError("version_id_col: column '" + table_->name() + "." + c.name() + "' is a primary key column");
    version_index_ = i;
}

void Mapper::configure() const {
    if (table_->primary_key().empty())
        throw ArgumentError("Mapper for class '" + class_name_ + "' could not assemble any primary key "
                            "columns for mapped table '" + table_->name() + "'");
    if (pk_.size() != table_->primary_key().size()) {
        std::string missing;
        for (const Column* c : table_->primary_key())
            if (!find(c->name())) missing += (missing.empty() ? "" : ", ") + c->name();
        throw ArgumentError("Mapper for class '" + class_name_ + "' does not map primary key column(s) " +
                            missing + " of table '" + table_->name() + "'");
    }
}

std::vector<Value> Mapper::identity(const void* obj) const {
    std::vector<Value> key;
    key.reserve(pk_.size());
    for (std::size_t i : pk_) key.push_back(props_[i].get(obj));
    return key;
}

ATHANOR_HOT void Mapper::read(const void* obj, std::vector<Value>& out) const {
    const std::size_t n = props_.size();
    if (out.size() != n) out.resize(n);  // a recycled row has its size already
    Value* o = out.data();
    const ColumnProperty* p = props_.data();
    for (std::size_t i = 0; i < n; ++i, ++o, ++p) {
        const char* at = static_cast<const char*>(obj) + p->offset;
        if (p->direct == ColumnProperty::Direct::int64) {
            const std::int64_t x = *reinterpret_cast<const std::int64_t*>(at);
            // A recycled row's integer is overwritten in place (no variant assignment).
            if (const std::int64_t* old = o->if_int()) *const_cast<std::int64_t*>(old) = x;
            else *o = Value(x);
        } else if (p->direct == ColumnProperty::Direct::text) {
            detail::read_text(*reinterpret_cast<const std::string*>(at), *o);
        } else if (p->read_into) {
            p->read_into(obj, *o);
        } else {
            *o = p->get(obj);
        }
    }
}

void Mapper::write(void* obj, const std::vector<Value>& values) const {
    for (std::size_t i = 0; i < props_.size() && i < values.size(); ++i) props_[i].set(obj, values[i]);
}

void Mapper::build_statements() const {
    std::call_once(statements_once_, [this] {
        std::vector<SelectItem> cols;
        for (const auto& p : props_) cols.emplace_back(p.column->expr());
        select_all_.emplace(std::move(cols));
        std::vector<ColumnElement> crit;
        for (std::size_t k = 0; k < pk_.size(); ++k)
            crit.push_back(props_[pk_[k]].column->expr() == bindparam("pk" + std::to_string(k)));
        select_by_pk_.emplace(select_all_->where(and_(crit)));
    });
}

const Select& Mapper::select_all() const {
    configure();
    build_statements();
    return *select_all_;
}

const Select& Mapper::select_by_pk() const {
    configure();
    build_statements();
    return *select_by_pk_;
}

ATHANOR_HOT void Mapper::write(void* obj, const ValueView* values) const {
    // The bounds in locals: a member written through its offset could, as far as the compiler
    // knows, be props_ itself, which it would then read again for every column.
    const ColumnProperty* p = props_.data();
    const ColumnProperty* const end = p + props_.size();
    for (; p != end; ++p, ++values)
        if (!detail::set_direct(*p, obj, *values)) p->set_view(obj, *values);  // other kinds: conversions, NULL checks
}

// ---- relationships ---------------------------------------------------------------------------

Cascade Cascade::parse(std::string_view text) {
    Cascade c{false, false, false, false, false, false};
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto comma = text.find(',', pos);
        std::string_view w = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        while (!w.empty() && w.front() == ' ') w.remove_prefix(1);
        while (!w.empty() && w.back() == ' ') w.remove_suffix(1);
        if (w == "all") c.save_update = c.merge = c.expunge = c.refresh_expire = c.delete_ = true;
        else if (w == "save-update") c.save_update = true;
        else if (w == "merge") c.merge = true;
        else if (w == "expunge") c.expunge = true;
        else if (w == "refresh-expire") c.refresh_expire = true;
        else if (w == "delete") c.delete_ = true;
        else if (w == "delete-orphan") c.delete_orphan = true;
        else if (!w.empty())
            throw ArgumentError("Invalid cascade option '" + std::string(w) +
                                "' (expected all, save-update, merge, expunge, refresh-expire, delete, delete-orphan)");
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    if (c.delete_orphan && !c.delete_)
        throw ArgumentError("cascade 'delete-orphan' needs 'delete' too (write \"all, delete-orphan\")");
    return c;
}

void Mapper::add_relationship(RelationshipProperty r) {
    if (find(r.key) || find_relationship(r.key))
        throw ArgumentError("property '" + r.key + "' is already mapped for class '" + class_name_ + "'");
    rels_.push_back(std::move(r));
}

const RelationshipProperty* Mapper::find_relationship(std::string_view key) const {
    for (const auto& r : rels_)
        if (r.key == key) return &r;
    return nullptr;
}

const std::vector<RelationshipProperty>& Mapper::relationships() const {
    if (!rels_.empty()) resolve_relationships();
    return rels_;
}

namespace {
const Mapper* mapper_for_type(std::type_index t) {
    for (const Registry* r : Registry::all())
        if (const Mapper* m = r->find(t)) return m;
    return nullptr;
}
}  // namespace

void Mapper::resolve_relationships() const {
    std::call_once(rels_once_, [this] {
        for (auto& rc : rels_) {
            auto& r = const_cast<RelationshipProperty&>(rc);
            std::string where = "relationship " + class_name_ + "." + r.key;
            r.owner = this;
            r.target_mapper = mapper_for_type(r.target);
            if (!r.target_mapper)
                throw UnmappedClassError(where + ": class '" + r.target_name + "' is not mapped");
            if (r.write_only && r.secondary)
                throw ArgumentError(where + ": a WriteOnly collection through a secondary table is not supported; "
                                    "use a Collection, or map the association table as a class");
            if (r.write_only && r.lazy != Lazy::select)
                throw ArgumentError(where + ": a WriteOnly collection never loads; it takes no lazy= strategy");
            if (r.secondary) {
                if (!r.collection) throw ArgumentError(where + ": secondary needs a Collection member");
                // Many-to-many: one foreign key of the association table to each side.
                r.secondary_owner.clear();
                r.secondary_target.clear();
                for (const auto& fk : r.secondary->all_foreign_keys()) {
                    auto targets = fk.target_columns();
                    bool to_owner = fk.target_table() == table_->name() && r.secondary_owner.empty();
                    bool to_target = !to_owner && fk.target_table() == r.target_mapper->table().name() &&
                                     r.secondary_target.empty();
                    if (!to_owner && !to_target) continue;
                    const Mapper* side = to_owner ? this : r.target_mapper;
                    auto& out = to_owner ? r.secondary_owner : r.secondary_target;
                    for (std::size_t i = 0; i < fk.columns.size(); ++i) {
                        int a = side->index_of(targets[i]);
                        if (a < 0)
                            throw ArgumentError(where + ": column " + side->table().name() + "." + targets[i] +
                                                " must be mapped");
                        out.emplace_back(static_cast<std::size_t>(a), &r.secondary->column(fk.columns[i]));
                    }
                }
                if (r.secondary_owner.empty() || r.secondary_target.empty())
                    throw ArgumentError(where + ": the secondary table '" + r.secondary->name() +
                                        "' needs a foreign key to each of '" + table_->name() + "' and '" +
                                        r.target_mapper->table().name() + "'");
                if (r.back_populates.empty() && r.back_populates_of)
                    r.back_populates = r.back_populates_of(*r.target_mapper);
                if (!r.back_populates.empty()) {
                    for (const auto& o : r.target_mapper->rels_)
                        if (o.key == r.back_populates) r.back = &o;
                    if (!r.back || !r.back->collection)
                        throw ArgumentError(where + ": back_populates names '" + r.back_populates +
                                            "', which must be a Collection of class '" + r.target_name + "'");
                }
                continue;
            }
            // The referred side and the referring side of the foreign key.
            const Mapper* referred = r.collection ? this : r.target_mapper;
            const Mapper* referring = r.collection ? r.target_mapper : this;
            r.pairs.clear();
            int found = 0;
            std::vector<std::string> chosen;
            if (r.foreign_keys) chosen = r.foreign_keys(*this, *r.target_mapper);
            for (const auto& fk : referring->table().all_foreign_keys()) {
                if (fk.target_table() != referred->table().name()) continue;
                if (!chosen.empty()) {
                    bool all_in = true;
                    for (const auto& c : fk.columns) all_in &= std::find(chosen.begin(), chosen.end(), c) != chosen.end();
                    if (!all_in) continue;
                }
                ++found;
                if (found > 1) break;
                auto targets = fk.target_columns();
                for (std::size_t i = 0; i < fk.columns.size(); ++i) {
                    int a = referred->index_of(targets[i]);
                    int b = referring->index_of(fk.columns[i]);
                    if (a < 0 || b < 0)
                        throw ArgumentError(where + ": the foreign key columns " + referring->table().name() + "." +
                                            fk.columns[i] + " -> " + referred->table().name() + "." + targets[i] +
                                            " must be mapped on both classes");
                    r.pairs.emplace_back(static_cast<std::size_t>(a), static_cast<std::size_t>(b));
                }
            }
            if (found == 0)
                throw ArgumentError(where + ": could not determine the join condition; there are no foreign keys "
                                    "linking tables '" + table_->name() + "' and '" + r.target_mapper->table().name() + "'");
            if (found > 1)
                throw ArgumentError(where + ": more than one foreign key links tables '" + table_->name() + "' and '" +
                                    r.target_mapper->table().name() + "'; name the one to use with sa::foreign_keys(...)");
            if (r.back_populates.empty() && r.back_populates_of) r.back_populates = r.back_populates_of(*r.target_mapper);
            if (!r.back_populates.empty()) {
                // Read the other side's declaration directly: resolving it would come back here.
                for (const auto& o : r.target_mapper->rels_)
                    if (o.key == r.back_populates) r.back = &o;
                if (!r.back)
                    throw ArgumentError(where + ": back_populates names '" + r.back_populates + "', which class '" +
                                        r.target_name + "' has no relationship called");
                if (r.back->collection == r.collection)
                    throw ArgumentError(where + ": back_populates pairs a collection with a reference only");
            }
        }
    });
}

const std::vector<Value>& Mapper::initial_values() const {
    std::call_once(initial_once_, [this] {
        auto fresh = create();
        initial_.resize(props_.size());
        for (std::size_t i = 0; i < props_.size(); ++i) {
            try {
                initial_[i] = props_[i].get(fresh.get());
            } catch (const Error&) {
                initial_[i] = Value();  // not storable as it is (a zero date): never "unset"
            }
        }
    });
    return initial_;
}

void Mapper::listen(MapperEvent e, Listener fn) {
    listeners_[static_cast<std::size_t>(e)].push_back(std::move(fn));
}

void Mapper::dispatch(MapperEvent e, void* target) const {
    for (const auto& fn : listeners_[static_cast<std::size_t>(e)]) fn(*this, target);
}

// ---- Record ---------------------------------------------------------------------------------

Record::Record(const Table& table) : table_(&table), values_(table.columns().size()) {}

const Table& Record::table() const {
    if (!table_) throw InvalidRequestError("this Record has no table");
    return *table_;
}

bool Record::has(std::string_view name) const noexcept {
    return table_ && table_->find_column(name) != nullptr;
}

std::size_t Record::position(std::string_view name) const {
    return table().column(name).position();  // ArgumentError names the table and column
}

const Value& Record::value(std::string_view name) const { return values_[position(name)]; }

void Record::set(std::string_view name, Value v) {
    const Column& c = table().column(name);
    if (!c.type().accepts(v.kind()))
        throw ArgumentError("cannot set " + std::string(kind_name(v.kind())) + " value on column '" +
                            table_->name() + "." + c.name() + "' of type " + c.type().repr());
    values_[c.position()] = std::move(v);
}

// ---- Registry -------------------------------------------------------------------------------

namespace detail {
std::string demangle(const char* name) {
    int status = 0;
    char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    std::string out = status == 0 && d ? d : name;
    std::free(d);
    return out;
}

void throw_null_into_member(const Column& col) {
    throw ArgumentError("NULL in column '" + col.table()->name() + "." + col.name() +
                        "' cannot be loaded into a non-optional member (map it to a std::optional)");
}

void check_member_type(const Column& col, Value::Kind kind, bool member_nullable,
                       const std::string& class_name) {
    (void)member_nullable;
    if (!col.type().accepts(kind) && kind != Value::Kind::null)
        throw ArgumentError("class '" + class_name + "': column '" + col.table()->name() + "." + col.name() +
                            "' is " + col.type().repr() + ", but the member stores " +
                            std::string(kind_name(kind)) + " values");
}
}  // namespace detail

namespace {
std::mutex& registries_mutex() {
    static std::mutex m;
    return m;
}
std::vector<const Registry*>& registries() {
    static std::vector<const Registry*> r;
    return r;
}
}  // namespace

Registry::Registry() {
    std::lock_guard lock(registries_mutex());
    registries().push_back(this);
}

Registry::~Registry() {
    life_->store(false);
    detail::registries_destroyed.fetch_add(1, std::memory_order_release);
    std::lock_guard lock(registries_mutex());
    auto& r = registries();
    r.erase(std::remove(r.begin(), r.end(), this), r.end());
}

std::vector<const Registry*> Registry::all() {
    std::lock_guard lock(registries_mutex());
    return registries();
}

Mapper& Registry::add(std::unique_ptr<Mapper> m) {
    // As SQLAlchemy, a class has one primary mapper: mapping it in a second registry would let
    // sessions pick either table.
    for (const Registry* r : all())
        if (r != this && r->find(m->type()))
            throw ArgumentError("Class '" + m->class_name() +
                                "' already has a primary mapper defined in another registry");
    std::lock_guard lock(mutex_);
    if (by_type_.contains(m->type()))
        throw ArgumentError("Class '" + m->class_name() + "' already has a primary mapper defined");
    Mapper& ref = *m;
    by_type_.emplace(m->type(), std::move(m));
    return ref;
}

Mapper& Registry::map_dynamic(const Table& table) {
    std::lock_guard lock(mutex_);
    if (dynamic_.contains(table.name()))
        throw ArgumentError("table '" + table.name() + "' already has a Record mapper");
    auto m = std::make_unique<Mapper>(
        table, std::type_index(typeid(Record)), "Record(" + table.name() + ")",
        [t = &table] { return std::static_pointer_cast<void>(std::allocate_shared<Record>(detail::PoolAllocator<Record>{}, *t)); }, true);
    for (const auto& col : table.columns()) {
        ColumnProperty p;
        p.column = col.get();
        p.key = col->name();
        std::size_t pos = col->position();
        p.get = [pos](const void* obj) { return static_cast<const Record*>(obj)->at(pos); };
        p.set = [pos](void* obj, const Value& v) { static_cast<Record*>(obj)->at(pos) = v; };
        p.equals = [pos](const void* obj, const ValueView& v) {
            return ValueView::of(static_cast<const Record*>(obj)->at(pos)) == v;
        };
        m->add_property(std::move(p));
    }
    Mapper& ref = *m;
    dynamic_.emplace(table.name(), std::move(m));
    return ref;
}

const Mapper* Registry::find(std::type_index type) const noexcept {
    std::lock_guard lock(mutex_);
    auto it = by_type_.find(type);
    return it == by_type_.end() ? nullptr : it->second.get();
}

const Mapper* Registry::find_dynamic(std::string_view table) const noexcept {
    std::lock_guard lock(mutex_);
    auto it = dynamic_.find(std::string(table));
    return it == dynamic_.end() ? nullptr : it->second.get();
}

const Mapper& Registry::dynamic_mapper(std::string_view table) const {
    return checked(find_dynamic(table), "Record(" + std::string(table) + ")");
}

void Registry::dispose(std::type_index type) {
    std::lock_guard lock(mutex_);
    by_type_.erase(type);
}

std::vector<const Mapper*> Registry::mappers() const {
    std::lock_guard lock(mutex_);
    std::vector<const Mapper*> out;
    for (const auto& [k, m] : by_type_) out.push_back(m.get());
    for (const auto& [k, m] : dynamic_) out.push_back(m.get());
    return out;
}

const Mapper& Registry::checked(const Mapper* m, const std::string& what) {
    if (!m) throw UnmappedClassError("Class '" + what + "' is not mapped");
    m->configure();
    return *m;
}

Registry& default_registry() {
    static Registry r;
    return r;
}

}  // namespace athanor
