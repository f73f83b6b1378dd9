// Statements: select, insert, update, delete_, text, union. Each is an immutable value built by
// chaining (every call returns a new statement); copies share the compiled-form cache, so a
// statement executed many times is compiled once per dialect (and, for INSERT/UPDATE without
// explicit values, once per set of parameter names).
#pragma once

#include <athanor/core/compiled.hpp>
#include <athanor/core/elements.hpp>
#include <athanor/core/schema.hpp>

#include <memory>
#include <string>
#include <vector>

namespace athanor {

class Dialect;

namespace detail {
struct CompileCache;
struct ShapeKey;
struct InsertData;
struct UpdateData;
struct DeleteData;
struct CompoundData;
}  // namespace detail

/// Something Connection::execute accepts.
class Executable {
public:
    virtual ~Executable() = default;

    /// The compiled form for `dialect`; `params` are the execution's first parameter set (INSERT
    /// and UPDATE without explicit values take their columns from it). Memoized: `cache_hit`
    /// reports whether this call reused an earlier compilation. Thread-safe.
    std::shared_ptr<const Compiled> compile(const Dialect& dialect, const Params* params = nullptr,
                                            bool* cache_hit = nullptr) const;
    /// SQL text for the generic dialect, as str(stmt) gives in SQLAlchemy.
    std::string to_string() const;
    /// SQL text for a dialect.
    std::string to_string(const Dialect& dialect) const;

protected:
    Executable();
    virtual std::shared_ptr<Compiled> do_compile(const Dialect& dialect,
                                                 const Params* params) const = 0;
    /// A key for the parameter-name set when compilation depends on it ("" otherwise).
    virtual std::string params_key(const Params* params) const;
    /// Describes the statement's shape (everything that decides its SQL, without the literal
    /// values, which are listed in order). Statements of the same shape share one compiled form
    /// process-wide, as SQLAlchemy's cache key does. False: not cacheable by shape.
    virtual bool shape(detail::ShapeKey& out) const;
    /// The table of an INSERT / UPDATE / DELETE (re-pointed on a shape-cache hit).
    virtual const Table* target_table() const noexcept { return nullptr; }

    std::shared_ptr<detail::CompileCache> cache_;
};

/// A textual statement with :name bind parameters (sa::text("SELECT * FROM t WHERE id = :id")).
class TextClause : public Executable {
public:
    explicit TextClause(std::string text);
    const std::string& text() const noexcept { return text_; }

protected:
    std::shared_ptr<Compiled> do_compile(const Dialect& dialect, const Params*) const override;

private:
    std::string text_;
};

TextClause text(std::string sql);

/// An item of select(...): a column expression, a table (all its columns) or a FromClause.
class SelectItem {
public:
    SelectItem(const ColumnElement& e) : columns_{e} {}
    template <class T>
        requires ValueConvertible<T>
    SelectItem(const T& v) : columns_{ColumnElement(v)} {}
    SelectItem(const Column& c) : columns_{c.expr()} {}
    SelectItem(const Table& t);
    SelectItem(const FromClause& f);
    std::vector<ColumnElement> columns_;
    std::shared_ptr<const detail::FromNode> from_;
};

class Select : public Executable {
public:
    Select();
    explicit Select(std::vector<SelectItem> items);

    Select where(const ColumnElement& criterion) const;  // repeated calls AND together
    Select filter(const ColumnElement& criterion) const { return where(criterion); }
    Select order_by(std::vector<ColumnElement> clauses) const;
    template <class... C>
    Select order_by(const ColumnElement& first, const C&... rest) const {
        return order_by(std::vector<ColumnElement>{first, ColumnElement(rest)...});
    }
    Select group_by(std::vector<ColumnElement> clauses) const;
    template <class... C>
    Select group_by(const ColumnElement& first, const C&... rest) const {
        return group_by(std::vector<ColumnElement>{first, ColumnElement(rest)...});
    }
    Select having(const ColumnElement& criterion) const;
    Select limit(std::int64_t n) const;
    Select offset(std::int64_t n) const;
    Select distinct(bool on = true) const;
    Select select_from(const FromClause& from) const;
    /// Adds columns to the SELECT list.
    Select add_columns(std::vector<SelectItem> items) const;
    /// Replaces the SELECT list, keeping the FROM the old columns implied, WHERE, ORDER BY...
    Select with_only_columns(std::vector<SelectItem> items) const;
    /// JOIN from the statement's leftmost FROM (or the join built so far) to `right`.
    Select join(const FromClause& right, const ColumnElement& on = {}) const;
    Select outerjoin(const FromClause& right, const ColumnElement& on = {}) const;
    /// JOIN with an explicit left side.
    Select join_from(const FromClause& left, const FromClause& right,
                     const ColumnElement& on = {}) const;
    Select outerjoin_from(const FromClause& left, const FromClause& right,
                          const ColumnElement& on = {}) const;

    /// The statement as a named FROM item: select(...).subquery("sq").c["col"].
    FromClause subquery(std::string name = "") const;
    /// (SELECT ...) as a column expression; must return one column.
    ColumnElement scalar_subquery() const;
    /// EXISTS (SELECT ...).
    ColumnElement exists() const;
    ColumnElement label(std::string name) const { return scalar_subquery().label(std::move(name)); }

    /// The expressions of the SELECT list.
    const std::vector<ColumnElement>& selected_columns() const;
    /// The WHERE criteria given so far (ANDed together).
    const std::vector<ColumnElement>& where_criteria() const;
    /// Whether LIMIT or OFFSET was given.
    bool has_limit_or_offset() const noexcept;
    const detail::SelectData& data() const noexcept { return *data_; }
    /// Internal: wraps built statement data.
    explicit Select(std::shared_ptr<detail::SelectData> d);

protected:
    std::shared_ptr<Compiled> do_compile(const Dialect& dialect, const Params*) const override;
    bool shape(detail::ShapeKey& out) const override;

private:
    std::shared_ptr<detail::SelectData> copy() const;
    std::shared_ptr<const detail::SelectData> data_;
};

template <class... Items>
Select select(const SelectItem& first, const Items&... rest) {
    return Select(std::vector<SelectItem>{first, SelectItem(rest)...});
}
Select select(std::vector<SelectItem> items);

/// exists().where(...): EXISTS (SELECT * FROM ... WHERE ...).
class ExistsBuilder {
public:
    ExistsBuilder where(const ColumnElement& criterion) const;
    operator ColumnElement() const;  // NOLINT
    ColumnElement expr() const;

private:
    std::vector<ColumnElement> where_;
};
ExistsBuilder exists();
ColumnElement exists(const Select& s);

/// UNION / UNION ALL of selects, with optional ORDER BY / LIMIT / OFFSET.
class CompoundSelect : public Executable {
public:
    CompoundSelect(std::string keyword, std::vector<Select> selects);
    CompoundSelect order_by(std::vector<ColumnElement> clauses) const;
    template <class... C>
    CompoundSelect order_by(const ColumnElement& first, const C&... rest) const {
        return order_by(std::vector<ColumnElement>{first, ColumnElement(rest)...});
    }
    CompoundSelect limit(std::int64_t n) const;
    CompoundSelect offset(std::int64_t n) const;
    FromClause subquery(std::string name = "") const;

protected:
    std::shared_ptr<Compiled> do_compile(const Dialect& dialect, const Params*) const override;
    bool shape(detail::ShapeKey& out) const override;

private:
    explicit CompoundSelect(std::shared_ptr<detail::CompoundData> d);
    std::shared_ptr<const detail::CompoundData> data_;
};

template <class... S>
CompoundSelect union_(const Select& first, const S&... rest) {
    return CompoundSelect("UNION", {first, rest...});
}
template <class... S>
CompoundSelect union_all(const Select& first, const S&... rest) {
    return CompoundSelect("UNION ALL", {first, rest...});
}

/// Column name -> expression for INSERT/UPDATE .values(); Params convert to it.
class ValuesMap {
public:
    ValuesMap() = default;
    ValuesMap(std::initializer_list<std::pair<std::string, ColumnElement>> items)
        : items_(items) {}
    ValuesMap(const Params& p);  // NOLINT
    std::vector<std::pair<std::string, ColumnElement>> items_;
};

class Insert : public Executable {
public:
    explicit Insert(const Table& table);
    /// Explicit values (expressions allowed); absent columns take their defaults.
    Insert values(const ValuesMap& values) const;
    /// Multi-row VALUES (...), (...).
    Insert values(const std::vector<Params>& rows) const;
    Insert returning(std::vector<ColumnElement> cols) const;
    template <class... C>
    Insert returning(const ColumnElement& first, const C&... rest) const {
        return returning(std::vector<ColumnElement>{first, ColumnElement(rest)...});
    }
    const Table& table() const noexcept;

protected:
    std::shared_ptr<Compiled> do_compile(const Dialect& dialect, const Params* params) const override;
    std::string params_key(const Params* params) const override;
    bool shape(detail::ShapeKey& out) const override;
    const Table* target_table() const noexcept override { return &table(); }

private:
    explicit Insert(std::shared_ptr<detail::InsertData> d);
    std::shared_ptr<const detail::InsertData> data_;
};

class Update : public Executable {
public:
    explicit Update(const Table& table);
    Update where(const ColumnElement& criterion) const;
    Update values(const ValuesMap& values) const;
    Update returning(std::vector<ColumnElement> cols) const;
    template <class... C>
    Update returning(const ColumnElement& first, const C&... rest) const {
        return returning(std::vector<ColumnElement>{first, ColumnElement(rest)...});
    }
    const Table& table() const noexcept;

protected:
    std::shared_ptr<Compiled> do_compile(const Dialect& dialect, const Params* params) const override;
    std::string params_key(const Params* params) const override;
    bool shape(detail::ShapeKey& out) const override;
    const Table* target_table() const noexcept override { return &table(); }

private:
    explicit Update(std::shared_ptr<detail::UpdateData> d);
    std::shared_ptr<const detail::UpdateData> data_;
};

class Delete : public Executable {
public:
    explicit Delete(const Table& table);
    Delete where(const ColumnElement& criterion) const;
    Delete returning(std::vector<ColumnElement> cols) const;
    const Table& table() const noexcept;

protected:
    std::shared_ptr<Compiled> do_compile(const Dialect& dialect, const Params*) const override;
    bool shape(detail::ShapeKey& out) const override;
    const Table* target_table() const noexcept override { return &table(); }

private:
    explicit Delete(std::shared_ptr<detail::DeleteData> d);
    std::shared_ptr<const detail::DeleteData> data_;
};

inline Insert insert(const Table& t) { return Insert(t); }
inline Update update(const Table& t) { return Update(t); }
inline Delete delete_(const Table& t) { return Delete(t); }

// ---- DDL as statements ----------------------------------------------------------------------

/// CREATE TABLE text exactly as SQLAlchemy emits it for the dialect (leading "\n", tab-indented
/// column lines, trailing "\n\n").
std::string create_table_sql(const Table& table, const Dialect& dialect);
/// CREATE [UNIQUE] INDEX statements for the table's indexes and index=true columns.
std::vector<std::string> create_index_sql(const Table& table, const Dialect& dialect);
std::string drop_table_sql(const Table& table, const Dialect& dialect);
/// The ALTER TABLE ... ADD statements of a table's use_alter foreign keys (run after every
/// table of create_all exists), and the DROP CONSTRAINT ones run before drop_all drops
/// tables; empty where the dialect keeps them inside CREATE TABLE (SQLite).
std::vector<std::string> add_constraints_sql(const Table& table, const Dialect& dialect);
std::vector<std::string> drop_constraints_sql(const Table& table, const Dialect& dialect);
/// One column as CREATE TABLE writes it: name, type, DEFAULT, NOT NULL (for ADD COLUMN).
std::string column_ddl(const Column& column, const Dialect& dialect);
/// The DEFAULT clause's SQL of a column's server default ("'x'", "CURRENT_TIMESTAMP"), or ""
/// when it has none.
std::string column_default_sql(const Column& column);
/// "[CONSTRAINT name ]FOREIGN KEY(a) REFERENCES t (b)[ ON DELETE ...]".
std::string foreign_key_sql(const ForeignKeyConstraint& fk, const Dialect& dialect);

}  // namespace athanor
