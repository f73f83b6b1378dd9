#include "nodes.hpp"
#include "sql_guard.hpp"

#include <athanor/core/connectable.hpp>
#include <athanor/core/dialect.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>
#include <athanor/core/selectable.hpp>

#include <algorithm>
#include <set>

namespace athanor {

using namespace detail;

// ---- ForeignKey -----------------------------------------------------------------------------

namespace {
std::pair<std::string, std::string> split_target(const std::string& target) {
    auto dot = target.rfind('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == target.size())
        throw ArgumentError("ForeignKey target '" + target + "' is not of the form 'table.column'");
    return {target.substr(0, dot), target.substr(dot + 1)};
}
}  // namespace

ForeignKey::ForeignKey(std::string target, ForeignKeyOptions opts)
    : target_(std::move(target)), opts_(std::move(opts)) {
    split_target(target_);  // validates
    opts_.ondelete = checked_referential_action(opts_.ondelete, "ON DELETE");
    opts_.onupdate = checked_referential_action(opts_.onupdate, "ON UPDATE");
}

void Column::apply(ServerDefaultOpt o) {
    if (o.is_sql) check_sql_expression(o.text, "server default of column '" + name_ + "'");
    server_default_ = std::move(o);
}
std::string ForeignKey::target_table() const { return split_target(target_).first; }
std::string ForeignKey::target_column() const { return split_target(target_).second; }
bool operator==(const ForeignKey& a, const ForeignKey& b) {
    return a.target_ == b.target_ && a.opts_.ondelete == b.opts_.ondelete &&
           a.opts_.onupdate == b.opts_.onupdate && a.opts_.name == b.opts_.name &&
           a.opts_.use_alter == b.opts_.use_alter;
}

std::string ForeignKeyConstraint::target_table() const {
    if (targets.empty()) throw ArgumentError("ForeignKeyConstraint without target columns");
    return split_target(targets.front()).first;
}
std::vector<std::string> ForeignKeyConstraint::target_columns() const {
    std::vector<std::string> out;
    for (const auto& t : targets) out.push_back(split_target(t).second);
    return out;
}

// ---- Column ---------------------------------------------------------------------------------

Value Column::default_value() const {
    if (default_.callable) return default_.callable();
    return default_.value;
}

bool Column::autoincrement() const noexcept {
    return table_ && table_->autoincrement_column() == this;
}

ColumnElement Column::expr() const {
    if (expr_) return ColumnElement(expr_);
    return ColumnElement(make_column_ref(this, nullptr));
}

bool Column::same_definition(const Column& o) const {
    return name_ == o.name_ && type_ == o.type_ && primary_key_ == o.primary_key_ &&
           nullable() == o.nullable() && unique_ == o.unique_ && index_ == o.index_ &&
           has_default_ == o.has_default_ && default_.value == o.default_.value &&
           static_cast<bool>(default_.callable) == static_cast<bool>(o.default_.callable) &&
           server_default_.has_value() == o.server_default_.has_value() &&
           (!server_default_ || (server_default_->text == o.server_default_->text &&
                                 server_default_->is_sql == o.server_default_->is_sql)) &&
           foreign_keys_ == o.foreign_keys_ && autoincrement_ == o.autoincrement_;
}

// ---- Table ----------------------------------------------------------------------------------

Table::Table(std::string name, std::vector<Column> columns)
    : name_(std::move(name)),
      from_([this] {
          FromNode n{};
          n.kind = FromKind::table;
          n.table = this;
          n.name = name_;
          return std::make_shared<const FromNode>(std::move(n));
      }()),
      c(from_) {
    if (name_.empty()) throw ArgumentError("a Table needs a name");
    for (auto& col : columns) add_column(std::move(col));
    finish();
}

void Table::add_column(Column col) {
    if (col.name().empty()) throw ArgumentError("table '" + name_ + "': a Column needs a name");
    if (find_column(col.name()))
        throw ArgumentError("table '" + name_ + "' has two columns named '" + col.name() + "'");
    if (col.table_ != nullptr && col.table_ != this)
        throw ArgumentError("column '" + col.name() + "' already belongs to table '" +
                            col.table_->name() + "'");
    auto p = std::make_unique<Column>(std::move(col));
    p->table_ = this;
    p->position_ = columns_.size();
    p->expr_ = make_column_ref(p.get(), nullptr);
    columns_.push_back(std::move(p));
}

void Table::finish() {
    // Column-level primary_key flags form the key unless a PrimaryKeyConstraint gave it.
    if (!pk_from_constraint_) {
        primary_key_.clear();
        for (const auto& col : columns_)
            if (col->primary_key()) primary_key_.push_back(col.get());
    }
    autoinc_ = nullptr;
    if (primary_key_.size() == 1) {
        const Column* col = primary_key_.front();
        if (col->type().is_integer() && col->autoincrement_.value_or(true) &&
            col->foreign_keys().empty())
            autoinc_ = col;
    }
}

const Column& Table::column(std::string_view name) const {
    if (const Column* col = find_column(name)) return *col;
    throw ArgumentError("table '" + name_ + "' has no column named '" + std::string(name) + "'");
}

const Column* Table::find_column(std::string_view name) const noexcept {
    for (const auto& col : columns_)
        if (col->name() == name) return col.get();
    return nullptr;
}

void Table::add_constraint(PrimaryKeyConstraint pk) {
    if (pk.columns.empty()) throw ArgumentError("table '" + name_ + "': empty PrimaryKeyConstraint");
    std::vector<const Column*> cols;
    for (const auto& n : pk.columns) {
        Column& col = const_cast<Column&>(column(n));
        col.primary_key_ = true;
        cols.push_back(&col);
    }
    primary_key_ = std::move(cols);
    pk_name_ = pk.name;
    pk_from_constraint_ = true;
    finish();
}

void Table::add_constraint(UniqueConstraint uq) {
    if (uq.columns.empty()) throw ArgumentError("table '" + name_ + "': empty UniqueConstraint");
    for (const auto& n : uq.columns) column(n);
    uniques_.push_back(std::move(uq));
}

void Table::add_constraint(ForeignKeyConstraint fk) {
    if (fk.columns.empty() || fk.columns.size() != fk.targets.size())
        throw ArgumentError("table '" + name_ +
                            "': ForeignKeyConstraint needs as many targets as columns");
    for (const auto& n : fk.columns) column(n);
    fk.target_table();
    fk.target_columns();  // every target is table.column
    fk.options.ondelete = checked_referential_action(fk.options.ondelete, "ON DELETE");
    fk.options.onupdate = checked_referential_action(fk.options.onupdate, "ON UPDATE");
    fk_constraints_.push_back(std::move(fk));
    finish();
}

void Table::add_index(Index ix) {
    if (ix.columns.empty()) throw ArgumentError("table '" + name_ + "': Index without columns");
    for (const auto& n : ix.columns) column(n);
    if (ix.name.empty()) {
        ix.name = "ix_" + name_;
        for (const auto& n : ix.columns) ix.name += "_" + n;
    }
    indexes_.push_back(std::move(ix));
}

std::vector<ForeignKeyConstraint> Table::all_foreign_keys() const {
    std::vector<ForeignKeyConstraint> out = fk_constraints_;
    for (const auto& col : columns_)
        for (const auto& fk : col->foreign_keys())
            out.push_back({{col->name()}, {fk.target()}, fk.options()});
    return out;
}

std::vector<std::string> Table::referred_tables() const {
    std::vector<std::string> out;
    for (const auto& fk : all_foreign_keys()) {
        std::string t = fk.target_table();
        if (t != name_ && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    }
    return out;
}

Select Table::select() const { return athanor::select(*this); }
Insert Table::insert() const { return Insert(*this); }
Update Table::update() const { return Update(*this); }
Delete Table::delete_() const { return Delete(*this); }
FromClause Table::alias(std::string name) const { return FromClause(*this).alias(std::move(name)); }
FromClause Table::join(const FromClause& right, const ColumnElement& on) const {
    return FromClause(*this).join(right, on);
}
FromClause Table::outerjoin(const FromClause& right, const ColumnElement& on) const {
    return FromClause(*this).outerjoin(right, on);
}

// ---- ColumnCollection / FromClause ----------------------------------------------------------

namespace {
std::string from_display_name(const FromNode& f) {
    if (!f.name.empty()) return f.name;
    if (f.table) return f.table->name();
    return "anonymous subquery";
}
}  // namespace

ColumnElement ColumnCollection::operator[](std::string_view name) const {
    const FromNode& f = *from_;
    switch (f.kind) {
        case FromKind::table: return f.table->column(name).expr();
        case FromKind::alias: {
            const Column* col = f.table->find_column(name);
            if (!col)
                throw ArgumentError("alias '" + from_display_name(f) + "' of table '" +
                                    f.table->name() + "' has no column named '" +
                                    std::string(name) + "'");
            return ColumnElement(make_column_ref(col, from_));
        }
        case FromKind::subquery: {
            for (std::size_t i = 0; i < f.column_names.size(); ++i)
                if (f.column_names[i] == name) {
                    ExprNode n{};
                    n.kind = ExprKind::subquery_column;
                    n.type = f.column_types[i];
                    n.name = std::string(name);
                    n.from = from_;
                    return ColumnElement(std::make_shared<const ExprNode>(std::move(n)));
                }
            throw ArgumentError("subquery '" + from_display_name(f) + "' has no column named '" +
                                std::string(name) + "'");
        }
        case FromKind::join: {
            std::vector<FromPtr> leaves;
            leaf_froms(from_, leaves);
            for (const auto& l : leaves) {
                ColumnCollection cc(l);
                if (cc.contains(name)) return cc[name];
            }
            throw ArgumentError("join has no column named '" + std::string(name) + "'");
        }
    }
    throw ArgumentError("no column named '" + std::string(name) + "'");
}

bool ColumnCollection::contains(std::string_view name) const {
    auto k = keys();
    return std::find(k.begin(), k.end(), name) != k.end();
}

std::vector<std::string> ColumnCollection::keys() const {
    const FromNode& f = *from_;
    std::vector<std::string> out;
    if (f.kind == FromKind::table || f.kind == FromKind::alias) {
        for (const auto& col : f.table->columns()) out.push_back(col->name());
    } else if (f.kind == FromKind::subquery) {
        out = f.column_names;
    } else {
        std::vector<FromPtr> leaves;
        leaf_froms(from_, leaves);
        for (const auto& l : leaves)
            for (auto& k : ColumnCollection(l).keys()) out.push_back(k);
    }
    return out;
}

std::vector<ColumnElement> ColumnCollection::all() const {
    const FromNode& f = *from_;
    std::vector<ColumnElement> out;
    if (f.kind == FromKind::join) {
        std::vector<FromPtr> leaves;
        leaf_froms(from_, leaves);
        for (const auto& l : leaves)
            for (auto& e : ColumnCollection(l).all()) out.push_back(e);
        return out;
    }
    for (const auto& k : keys()) out.push_back((*this)[k]);
    return out;
}

std::size_t ColumnCollection::size() const { return keys().size(); }

FromClause::FromClause(const Table& table) : node_(table.from_node()), c(node_) {}
FromClause::FromClause(std::shared_ptr<const FromNode> node) : node_(std::move(node)), c(node_) {}

FromClause FromClause::join(const FromClause& right, const ColumnElement& on) const {
    return FromClause(make_join(node_, right.node_, on, false));
}
FromClause FromClause::outerjoin(const FromClause& right, const ColumnElement& on) const {
    return FromClause(make_join(node_, right.node_, on, true));
}
FromClause FromClause::alias(std::string name) const {
    if (node_->kind != FromKind::table)
        throw ArgumentError("alias() is supported on tables; use subquery() for selects");
    FromNode n{};
    n.kind = FromKind::alias;
    n.table = node_->table;
    n.name = std::move(name);
    return FromClause(std::make_shared<const FromNode>(std::move(n)));
}
std::string FromClause::name() const { return from_display_name(*node_); }

namespace detail {
void leaf_froms(const FromPtr& f, std::vector<FromPtr>& out) {
    if (f->kind == FromKind::join) {
        leaf_froms(f->left, out);
        leaf_froms(f->right, out);
    } else {
        out.push_back(f);
    }
}

FromPtr make_join(const FromPtr& left, const FromPtr& right, const ColumnElement& on, bool outer) {
    FromNode n{};
    n.kind = FromKind::join;
    n.left = left;
    n.right = right;
    n.isouter = outer;
    if (on.valid()) {
        n.onclause = on.node_ptr();
        return std::make_shared<const FromNode>(std::move(n));
    }
    // Infer ON from the foreign keys between the right side and the tables on the left.
    if (!right->table)
        throw ArgumentError("Can't infer a join condition to a subquery; give the ON clause");
    std::vector<FromPtr> lefts;
    leaf_froms(left, lefts);
    struct Match {
        FromPtr parent_from;  // side holding the referred columns
        FromPtr child_from;   // side holding the foreign key
        ForeignKeyConstraint fk;
    };
    std::vector<Match> matches;
    auto add_matches = [&](const FromPtr& child, const FromPtr& parent) {
        if (!child->table || !parent->table) return;
        for (auto& fk : child->table->all_foreign_keys())
            if (fk.target_table() == parent->table->name()) matches.push_back({parent, child, fk});
    };
    for (const auto& l : lefts) add_matches(right, l);
    if (matches.empty())
        for (const auto& l : lefts) add_matches(l, right);
    std::string lname = lefts.empty() ? "?" : from_display_name(*lefts.front());
    std::string rname = from_display_name(*right);
    if (matches.empty())
        throw ArgumentError("Can't find any foreign key relationships between '" + lname +
                            "' and '" + rname + "'.");
    if (matches.size() > 1)
        throw ArgumentError("Can't determine join between '" + lname + "' and '" + rname +
                            "'; tables have more than one foreign key constraint relationship "
                            "between them. Please specify the 'onclause' of this join explicitly.");
    const Match& m = matches.front();
    std::vector<ColumnElement> crit;
    auto ref_for = [](const FromPtr& f, const Column& col) {
        return ColumnElement(make_column_ref(&col, f->kind == FromKind::alias ? f : nullptr));
    };
    auto targets = m.fk.target_columns();
    for (std::size_t i = 0; i < m.fk.columns.size(); ++i) {
        const Column* pc = m.parent_from->table->find_column(targets[i]);
        if (!pc)
            throw NoSuchTableError("foreign key '" + m.fk.targets[i] + "' of table '" +
                                   m.child_from->table->name() + "' refers to a missing column");
        const Column& cc = m.child_from->table->column(m.fk.columns[i]);
        crit.push_back(ref_for(m.parent_from, *pc) == ref_for(m.child_from, cc));
    }
    n.onclause = and_(crit).node_ptr();
    return std::make_shared<const FromNode>(std::move(n));
}
}  // namespace detail

// ---- MetaData -------------------------------------------------------------------------------

Table& MetaData::add_table(std::string name, std::vector<Column> cols) {
    if (tables_.contains(name))
        throw ArgumentError("Table '" + name + "' is already defined for this MetaData instance");
    auto t = std::make_unique<Table>(name, std::move(cols));
    Table& ref = *t;
    tables_.emplace(std::move(name), std::move(t));
    return ref;
}

Table& MetaData::add_table(std::unique_ptr<Table> t) {
    if (!t) throw ArgumentError("add_table(nullptr)");
    if (tables_.contains(t->name()))
        throw ArgumentError("Table '" + t->name() + "' is already defined for this MetaData instance");
    Table& ref = *t;
    std::string name = t->name();
    tables_.emplace(std::move(name), std::move(t));
    return ref;
}

Table& MetaData::get_table(std::string_view name) const {
    if (Table* t = find_table(name)) return *t;
    throw NoSuchTableError("no table named '" + std::string(name) + "' in this MetaData");
}

Table* MetaData::find_table(std::string_view name) const noexcept {
    auto it = tables_.find(name);
    return it == tables_.end() ? nullptr : it->second.get();
}

void MetaData::remove(std::string_view name) {
    auto it = tables_.find(name);
    if (it != tables_.end()) tables_.erase(it);
}

std::vector<const Table*> MetaData::sorted_tables() const {
    // Kahn's algorithm; among the ready tables the first by name goes next, so the order is
    // deterministic. References to tables outside this MetaData are ignored.
    std::map<std::string, std::set<std::string>, std::less<>> deps;
    for (const auto& [name, t] : tables_) {
        auto& d = deps[name];
        for (const auto& fk : t->all_foreign_keys()) {
            std::string r = fk.target_table();
            if (r != name && !fk.options.use_alter && tables_.contains(r)) d.insert(r);
        }
    }
    std::vector<const Table*> out;
    std::set<std::string> done;
    while (out.size() < tables_.size()) {
        bool progressed = false;
        for (const auto& [name, d] : deps) {
            if (done.contains(name)) continue;
            if (std::all_of(d.begin(), d.end(), [&](const std::string& x) { return done.contains(x); })) {
                done.insert(name);
                out.push_back(tables_.find(name)->second.get());
                progressed = true;
                break;
            }
        }
        if (!progressed) {
            std::string names;
            for (const auto& [name, d] : deps)
                if (!done.contains(name)) names += (names.empty() ? "" : ", ") + name;
            throw CircularDependencyError(
                "Can't sort tables for DDL: a foreign key cycle exists between tables " + names +
                "; give one of the foreign keys {.use_alter = true}");
        }
    }
    return out;
}

void MetaData::create_all(Connectable& bind, bool checkfirst) const {
    auto order = sorted_tables();
    bind.run_schema_work([&](SchemaConnection& conn) {
        const Dialect& d = conn.dialect();
        std::vector<const Table*> todo;
        for (const Table* t : order)
            if (!checkfirst || !d.has_table(conn, t->name())) todo.push_back(t);
        for (const Table* t : todo) {
            conn.execute_ddl(create_table_sql(*t, d));
            for (const auto& ix : create_index_sql(*t, d)) conn.execute_ddl(ix);
        }
        for (const Table* t : todo)
            for (const auto& add : add_constraints_sql(*t, d)) conn.execute_ddl(add);
    });
}

void MetaData::drop_all(Connectable& bind, bool checkfirst) const {
    auto order = sorted_tables();
    std::reverse(order.begin(), order.end());
    bind.run_schema_work([&](SchemaConnection& conn) {
        const Dialect& d = conn.dialect();
        std::vector<const Table*> todo;
        // SQLAlchemy probes in creation order, then drops in reverse.
        for (auto it = order.rbegin(); it != order.rend(); ++it)
            if (!checkfirst || d.has_table(conn, (*it)->name())) todo.push_back(*it);
        std::reverse(todo.begin(), todo.end());
        for (const Table* t : todo)
            for (const auto& drop : drop_constraints_sql(*t, d)) conn.execute_ddl(drop);
        for (const Table* t : todo) conn.execute_ddl(drop_table_sql(*t, d));
    });
}

}  // namespace athanor
