// Schema at run time: Column, ForeignKey, constraints, Index, Table, MetaData.
//
// Ownership: a MetaData owns its Tables (stable addresses for the MetaData's lifetime; moving a
// MetaData keeps them valid); a Table owns its Columns. Schema objects are built once and then
// read: reading from several threads is safe, changing them while statements run is not.
#pragma once

#include <athanor/core/elements.hpp>
#include <athanor/core/fwd.hpp>
#include <athanor/core/types.hpp>
#include <athanor/core/value.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace athanor {

class Connectable;

// ---- column options (sa::primary_key(), sa::nullable(false), ...) --------------------------

struct PrimaryKeyOpt {
    bool value = true;
};
struct NullableOpt {
    bool value = true;
};
struct UniqueOpt {
    bool value = true;
};
struct IndexOpt {
    bool value = true;
};
struct AutoincrementOpt {
    bool value = true;
};
/// A client-side default: a fixed value or a callable evaluated per INSERT row.
struct DefaultOpt {
    Value value;
    std::function<Value()> callable;
};
/// A server-side default: `literal` text is quoted ('x'), `sql` text is emitted as is.
struct ServerDefaultOpt {
    std::string text;
    bool is_sql = false;
};

inline PrimaryKeyOpt primary_key(bool v = true) { return {v}; }
inline NullableOpt nullable(bool v = true) { return {v}; }
inline UniqueOpt unique(bool v = true) { return {v}; }
inline IndexOpt index(bool v = true) { return {v}; }
inline AutoincrementOpt autoincrement(bool v = true) { return {v}; }
inline DefaultOpt default_(Value v) { return {std::move(v), {}}; }
template <class F>
    requires std::is_invocable_v<F>
DefaultOpt default_(F f) {
    return {Value(), [f = std::move(f)]() -> Value { return Value(f()); }};
}
inline ServerDefaultOpt server_default(std::string literal_text) {
    return {std::move(literal_text), false};
}
/// A server default given as SQL (sa::server_default_sql("CURRENT_TIMESTAMP")).
inline ServerDefaultOpt server_default_sql(std::string sql) { return {std::move(sql), true}; }

struct ForeignKeyOptions {
    std::string ondelete{};  // "CASCADE", "SET NULL", ... ("" = none)
    std::string onupdate{};
    std::string name{};  // constraint name ("" = unnamed)
    /// Breaks a cycle of foreign keys between tables (SQLAlchemy's use_alter): not taken into
    /// account when ordering tables for CREATE / DROP. SQLite has no ALTER TABLE ADD
    /// CONSTRAINT, and accepts a reference to a table created later, so the constraint is
    /// still rendered inside CREATE TABLE.
    bool use_alter = false;
};

/// A column-level reference to "table.column".
class ForeignKey {
public:
    explicit ForeignKey(std::string target, ForeignKeyOptions opts = {});
    const std::string& target() const noexcept { return target_; }
    /// "users" of "users.id".
    std::string target_table() const;
    /// "id" of "users.id".
    std::string target_column() const;
    const ForeignKeyOptions& options() const noexcept { return opts_; }
    friend bool operator==(const ForeignKey&, const ForeignKey&);

private:
    std::string target_;
    ForeignKeyOptions opts_;
};

// ---- Column --------------------------------------------------------------------------------

class Column {
public:
    /// Column("name", sa::String(50), sa::nullable(false), sa::ForeignKey("t.id"), ...)
    template <class... Opts>
    Column(std::string name, TypeEngine type, Opts&&... opts)
        : name_(std::move(name)), type_(type) {
        (apply(std::forward<Opts>(opts)), ...);
    }

    Column(const Column&) = default;
    Column(Column&&) = default;
    Column& operator=(const Column&) = default;
    Column& operator=(Column&&) = default;

    const std::string& name() const noexcept { return name_; }
    const TypeEngine& type() const noexcept { return type_; }
    bool primary_key() const noexcept { return primary_key_; }
    /// Primary key columns are NOT NULL unless nullable(true) was given explicitly.
    bool nullable() const noexcept { return nullable_ ? *nullable_ : !primary_key_; }
    bool unique() const noexcept { return unique_; }
    bool index() const noexcept { return index_; }
    bool has_default() const noexcept { return has_default_; }
    bool has_callable_default() const noexcept { return static_cast<bool>(default_.callable); }
    /// The client-side default for one INSERT row (evaluates a callable default).
    Value default_value() const;
    const std::optional<ServerDefaultOpt>& server_default() const noexcept { return server_default_; }
    const std::vector<ForeignKey>& foreign_keys() const noexcept { return foreign_keys_; }
    /// Whether this column is the table's integer autoincrement primary key: the one primary
    /// key column, of an integer type, not turned off with autoincrement(false).
    bool autoincrement() const noexcept;

    /// The owning table (nullptr until the column is added to one).
    const Table* table() const noexcept { return table_; }
    /// autoincrement(...) as given, if given.
    std::optional<bool> explicit_autoincrement() const noexcept { return autoincrement_; }
    /// Applies one more option (before the column is added to a table).
    template <class Opt>
    Column& add(Opt&& opt) {
        apply(std::forward<Opt>(opt));
        return *this;
    }
    /// Position within the table's columns.
    std::size_t position() const noexcept { return position_; }

    /// The column as an expression (users.c["name"] is the same).
    ColumnElement expr() const;
    operator ColumnElement() const { return expr(); }

    /// Same definition (name, type, options); the owning table is not compared.
    bool same_definition(const Column& other) const;

private:
    friend class Table;
    void apply(PrimaryKeyOpt o) { primary_key_ = o.value; }
    void apply(NullableOpt o) { nullable_ = o.value; }
    void apply(UniqueOpt o) { unique_ = o.value; }
    void apply(IndexOpt o) { index_ = o.value; }
    void apply(AutoincrementOpt o) { autoincrement_ = o.value; }
    void apply(DefaultOpt o) {
        default_ = std::move(o);
        has_default_ = true;
    }
    void apply(ServerDefaultOpt o);  // an SQL default must be one expression (ArgumentError)
    void apply(ForeignKey fk) { foreign_keys_.push_back(std::move(fk)); }

    std::string name_;
    TypeEngine type_;
    bool primary_key_ = false;
    std::optional<bool> nullable_;
    bool unique_ = false;
    bool index_ = false;
    std::optional<bool> autoincrement_;
    bool has_default_ = false;
    DefaultOpt default_;
    std::optional<ServerDefaultOpt> server_default_;
    std::vector<ForeignKey> foreign_keys_;
    const Table* table_ = nullptr;
    std::size_t position_ = 0;
    std::shared_ptr<const detail::ExprNode> expr_;  // cached column reference
};

// ---- table-level constraints ---------------------------------------------------------------

struct PrimaryKeyConstraint {
    std::vector<std::string> columns{};
    std::string name{};
    friend bool operator==(const PrimaryKeyConstraint&, const PrimaryKeyConstraint&) = default;
};
struct UniqueConstraint {
    std::vector<std::string> columns{};
    std::string name{};
    friend bool operator==(const UniqueConstraint&, const UniqueConstraint&) = default;
};
struct ForeignKeyConstraint {
    std::vector<std::string> columns{};
    std::vector<std::string> targets{};  // "table.column" each
    ForeignKeyOptions options{};
    /// The referred table's name.
    std::string target_table() const;
    std::vector<std::string> target_columns() const;
};
struct Index {
    std::string name{};
    std::vector<std::string> columns{};
    bool unique = false;
    friend bool operator==(const Index&, const Index&) = default;
};

// ---- FromClause: anything a SELECT can select from ------------------------------------------

/// The `.c` of a table, alias or subquery: c["name"] is the column as an expression.
class ColumnCollection {
public:
    explicit ColumnCollection(std::shared_ptr<const detail::FromNode> from)
        : from_(std::move(from)) {}
    /// Throws ArgumentError naming the table and column when there is no such column.
    ColumnElement operator[](std::string_view name) const;
    bool contains(std::string_view name) const;
    std::vector<ColumnElement> all() const;
    std::vector<std::string> keys() const;
    std::size_t size() const;

private:
    std::shared_ptr<const detail::FromNode> from_;
};

/// A table, an alias, a join or a subquery. Immutable value.
class FromClause {
public:
    FromClause(const Table& table);  // NOLINT: a Table is a FromClause
    explicit FromClause(std::shared_ptr<const detail::FromNode> node);
    FromClause(const FromClause& o) : node_(o.node_), c(node_) {}
    FromClause& operator=(const FromClause& o) {
        node_ = o.node_;
        c = ColumnCollection(node_);
        return *this;
    }

    const std::shared_ptr<const detail::FromNode>& node() const noexcept { return node_; }

    /// JOIN; the ON clause is inferred from the one foreign key between the two sides when not
    /// given (ArgumentError when there is none or more than one).
    FromClause join(const FromClause& right, const ColumnElement& on = {}) const;
    FromClause outerjoin(const FromClause& right, const ColumnElement& on = {}) const;
    FromClause alias(std::string name = "") const;
    /// The name SQL uses to qualify its columns (table name or alias name).
    std::string name() const;

private:
    std::shared_ptr<const detail::FromNode> node_;

public:
    ColumnCollection c;
};

// ---- Table ---------------------------------------------------------------------------------

class Table {
public:
    Table(std::string name, std::vector<Column> columns);
    Table(const Table&) = delete;
    Table& operator=(const Table&) = delete;

    const std::string& name() const noexcept { return name_; }
    const std::vector<std::unique_ptr<Column>>& columns() const noexcept { return columns_; }
    /// The schema column; throws ArgumentError naming the table when absent.
    const Column& column(std::string_view name) const;
    const Column* find_column(std::string_view name) const noexcept;
    /// Primary key columns in key order.
    const std::vector<const Column*>& primary_key() const noexcept { return primary_key_; }
    /// Name of the primary key constraint ("" when unnamed).
    const std::string& primary_key_name() const noexcept { return pk_name_; }
    /// The integer autoincrement primary key column, or nullptr.
    const Column* autoincrement_column() const noexcept { return autoinc_; }
    const std::vector<UniqueConstraint>& unique_constraints() const noexcept { return uniques_; }
    const std::vector<Index>& indexes() const noexcept { return indexes_; }
    /// Table-level foreign key constraints (column-level ones live on the Column).
    const std::vector<ForeignKeyConstraint>& foreign_key_constraints() const noexcept {
        return fk_constraints_;
    }
    /// Every foreign key of the table, column-level ones as single-column constraints.
    std::vector<ForeignKeyConstraint> all_foreign_keys() const;
    /// Names of the tables this one refers to (self-references excluded).
    std::vector<std::string> referred_tables() const;

    void add_constraint(PrimaryKeyConstraint pk);
    void add_constraint(UniqueConstraint uq);
    void add_constraint(ForeignKeyConstraint fk);
    void add_index(Index ix);

    /// SELECT / INSERT / UPDATE / DELETE on this table.
    Select select() const;
    Insert insert() const;
    Update update() const;
    Delete delete_() const;
    FromClause alias(std::string name = "") const;
    FromClause join(const FromClause& right, const ColumnElement& on = {}) const;
    FromClause outerjoin(const FromClause& right, const ColumnElement& on = {}) const;

    const std::shared_ptr<const detail::FromNode>& from_node() const noexcept { return from_; }

private:
    friend class MetaData;
    void add_column(Column c);
    void finish();

    std::string name_;
    std::vector<std::unique_ptr<Column>> columns_;
    std::vector<const Column*> primary_key_;
    std::string pk_name_;
    bool pk_from_constraint_ = false;
    const Column* autoinc_ = nullptr;
    std::vector<UniqueConstraint> uniques_;
    std::vector<Index> indexes_;
    std::vector<ForeignKeyConstraint> fk_constraints_;
    std::shared_ptr<const detail::FromNode> from_;

public:
    /// users.c["name"]: the column as an expression.
    ColumnCollection c;
};

// ---- MetaData ------------------------------------------------------------------------------

class MetaData {
public:
    MetaData() = default;
    MetaData(MetaData&&) noexcept = default;
    MetaData& operator=(MetaData&&) noexcept = default;
    MetaData(const MetaData&) = delete;
    MetaData& operator=(const MetaData&) = delete;

    /// Defines a table from Columns and table-level constraints (PrimaryKeyConstraint,
    /// UniqueConstraint, ForeignKeyConstraint, Index). A second table of the same name is an
    /// ArgumentError.
    template <class... Items>
    Table& table(std::string name, Items&&... items) {
        std::vector<Column> cols;
        std::vector<std::function<void(Table&)>> extras;
        (collect(cols, extras, std::forward<Items>(items)), ...);
        Table& t = add_table(std::move(name), std::move(cols));
        try {
            for (auto& e : extras) e(t);
        } catch (...) {
            remove(t.name());  // a bad constraint leaves no half-built table behind
            throw;
        }
        return t;
    }
    /// Adds a fully built table (used by declarative and reflection).
    Table& add_table(std::unique_ptr<Table> t);

    /// name -> Table, ordered by name.
    const std::map<std::string, std::unique_ptr<Table>, std::less<>>& tables() const noexcept {
        return tables_;
    }
    Table& get_table(std::string_view name) const;  // throws NoSuchTableError
    Table* find_table(std::string_view name) const noexcept;
    bool contains(std::string_view name) const noexcept { return find_table(name) != nullptr; }
    void remove(std::string_view name);
    void clear() noexcept { tables_.clear(); }

    /// Tables ordered so that every table comes after the tables it refers to (foreign keys
    /// with use_alter excepted). A cycle of foreign keys is a CircularDependencyError naming
    /// the tables.
    std::vector<const Table*> sorted_tables() const;

    /// CREATE TABLE / CREATE INDEX for each table that does not exist yet (checkfirst), in
    /// dependency order, in one transaction.
    void create_all(Connectable& bind, bool checkfirst = true) const;
    /// DROP TABLE in reverse dependency order for each table that exists (checkfirst).
    void drop_all(Connectable& bind, bool checkfirst = true) const;
    /// Adds a Table for each table of the database (or those in `only`); existing definitions
    /// of the same name are replaced.
    void reflect(Connectable& bind, const std::vector<std::string>& only = {});

    /// The schema as a JSON document; from_json(to_json()) rebuilds an identical MetaData.
    /// A column with a callable default cannot be serialized (ArgumentError).
    nlohmann::json to_json() const;
    /// Throws ArgumentError naming the offending field ("tables[0].columns[1].type").
    static MetaData from_json(const nlohmann::json& doc);

private:
    static void collect(std::vector<Column>& cols, std::vector<std::function<void(Table&)>>&,
                        Column c) {
        cols.push_back(std::move(c));
    }
    template <class C>
        requires(std::is_same_v<std::remove_cvref_t<C>, PrimaryKeyConstraint> ||
                 std::is_same_v<std::remove_cvref_t<C>, UniqueConstraint> ||
                 std::is_same_v<std::remove_cvref_t<C>, ForeignKeyConstraint>)
    static void collect(std::vector<Column>&, std::vector<std::function<void(Table&)>>& extras,
                        C&& c) {
        extras.push_back([c = std::forward<C>(c)](Table& t) { t.add_constraint(c); });
    }
    static void collect(std::vector<Column>&, std::vector<std::function<void(Table&)>>& extras,
                        Index ix) {
        extras.push_back([ix = std::move(ix)](Table& t) { t.add_index(ix); });
    }
    Table& add_table(std::string name, std::vector<Column> cols);

    std::map<std::string, std::unique_ptr<Table>, std::less<>> tables_;
};

/// A foreign key cycle among tables (sorted_tables, create_all).
class CircularDependencyError : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

}  // namespace athanor
