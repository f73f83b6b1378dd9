// The Dialect interface: everything that differs between databases (identifier quoting, type
// names, paramstyle, RETURNING, savepoints, reflection). core/ compiles through it; engine/
// implements it (SQLite now, PostgreSQL later) so core never names a database.
//
// Dialects are immutable after construction and safe to share between threads.
#pragma once

#include <athanor/core/types.hpp>

#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace athanor {

class SchemaConnection;
class Column;

struct ReflectedColumn {
    std::string name;
    TypeEngine type;
    bool nullable = true;
    std::optional<std::string> default_sql;  // the DEFAULT clause text as stored
    int primary_key_position = 0;            // 1-based position in the primary key, 0 if none
};
struct ReflectedForeignKey {
    std::string name;  // the constraint's name where the database has one (PostgreSQL)
    std::vector<std::string> columns;
    std::string referred_table;
    std::vector<std::string> referred_columns;
    std::string ondelete;
    std::string onupdate;
};
struct ReflectedIndex {
    std::string name;
    std::vector<std::string> columns;
    bool unique = false;
    bool from_constraint = false;  // created by a UNIQUE constraint, not CREATE INDEX
};
struct ReflectedTable {
    std::string name;
    std::vector<ReflectedColumn> columns;
    std::vector<ReflectedForeignKey> foreign_keys;
    std::vector<ReflectedIndex> indexes;
};

class Dialect {
public:
    Dialect() noexcept;
    Dialect(const Dialect&) noexcept;  // a copy is another dialect: its own cache_id()
    Dialect& operator=(const Dialect&) noexcept { return *this; }
    virtual ~Dialect() = default;

    /// Names this dialect object in compiled-statement caches, never reused in the process (an
    /// address can be: a dialect created where a destroyed one was must not find its entries).
    std::uint64_t cache_id() const noexcept { return cache_id_; }

    /// "sqlite", "postgresql", "default".
    virtual std::string_view name() const noexcept = 0;

    // ---- identifiers
    /// Whether `ident` must be quoted: reserved words, characters other than lowercase letters,
    /// digits and '_', or a leading digit.
    virtual bool requires_quotes(std::string_view ident) const;
    /// `ident` in double quotes, embedded quotes doubled.
    virtual std::string quote_identifier(std::string_view ident) const;
    /// quote_identifier(ident) when required, else ident.
    std::string quote(std::string_view ident) const;

    // ---- parameters and statements
    /// The placeholder for the n-th (0-based) positional parameter: "?" (qmark) or "$1".
    virtual std::string bind_placeholder(std::size_t index) const { (void)index; return "?"; }
    virtual bool supports_returning() const noexcept { return false; }
    virtual bool supports_multivalues_insert() const noexcept { return true; }
    virtual bool supports_ilike() const noexcept { return false; }
    /// IS [NOT] DISTINCT FROM is spelled so (else IS NOT / IS, SQLite's NULL-safe operators).
    virtual bool supports_is_distinct_from() const noexcept { return true; }
    /// INSERTs of a table with an autoincrement key not given fetch the new key by appending
    /// RETURNING (PostgreSQL: there is no last-insert-rowid).
    virtual bool implicit_returning() const noexcept { return false; }
    /// RETURNING names columns with their table ("RETURNING users.id", PostgreSQL) or bare.
    virtual bool returning_qualified() const noexcept { return false; }
    /// ALTER TABLE ... ADD CONSTRAINT exists (use_alter foreign keys are added after the
    /// tables; SQLite cannot, and needs not: it accepts forward references).
    virtual bool supports_alter() const noexcept { return false; }
    /// An OFFSET without LIMIT is rendered "LIMIT ALL OFFSET ..." (PostgreSQL, as SQLAlchemy).
    virtual bool limit_all() const noexcept { return false; }
    /// Whether LIMIT and OFFSET always come together (SQLite: a missing LIMIT is -1, a missing
    /// OFFSET is 0, both bound as parameters, as SQLAlchemy renders them).
    virtual bool limit_offset_together() const noexcept { return false; }
    /// Text rendered for true_()/false_() where there is no boolean literal.
    virtual std::string true_literal() const { return "1"; }
    virtual std::string false_literal() const { return "0"; }

    // ---- DDL
    /// The type as spelled in CREATE TABLE and CAST.
    virtual std::string type_ddl(const TypeEngine& type) const;
    /// The type of a column in CREATE TABLE (PostgreSQL: SERIAL for an autoincrement key).
    virtual std::string column_type_ddl(const Column& column) const;

    // ---- transactions
    virtual std::string savepoint_sql(std::string_view name) const;
    virtual std::string release_savepoint_sql(std::string_view name) const;
    virtual std::string rollback_to_savepoint_sql(std::string_view name) const;

    // ---- reflection (through a live connection)
    /// The SQL probing whether a table exists (create_all's checkfirst), and how to read it.
    virtual bool has_table(SchemaConnection& conn, std::string_view table) const = 0;
    virtual std::vector<std::string> get_table_names(SchemaConnection& conn) const = 0;
    /// Throws NoSuchTableError when the table does not exist.
    virtual ReflectedTable reflect_table(SchemaConnection& conn, std::string_view table) const = 0;

private:
    std::uint64_t cache_id_;
};

/// A generic dialect for printing statements without a database (SQLAlchemy's str(stmt)):
/// qmark parameters, standard quoting; it cannot reflect.
class DefaultDialect : public Dialect {
public:
    std::string_view name() const noexcept override { return "default"; }
    bool supports_returning() const noexcept override { return true; }
    bool has_table(SchemaConnection&, std::string_view) const override;
    std::vector<std::string> get_table_names(SchemaConnection&) const override;
    ReflectedTable reflect_table(SchemaConnection&, std::string_view) const override;
};

const Dialect& default_dialect();

}  // namespace athanor
