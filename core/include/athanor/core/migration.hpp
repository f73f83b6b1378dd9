// Schema evolution (after Alembic's autogenerate and its SQLite "batch" mode): compare a live
// database with a MetaData, get an ordered plan of operations, look at it, apply it in one
// transaction.
//
//   sa::MigrationPlan plan = sa::plan_migration(*engine, metadata);
//   for (const sa::MigrationOp& op : plan.operations()) std::cout << op.describe() << "\n";
//   if (!plan.destructive()) plan.apply(*engine);      // else apply(*engine, {.allow_data_loss = true})
//
// Renames cannot be told from a drop and an add (Alembic cannot either): name them in
// MigrationOptions::renames. Thread-safety: a plan is an immutable value once built.
#pragma once

#include <athanor/core/exc.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace athanor {

class Connectable;
class MetaData;

enum class MigrationOpKind : std::uint8_t {
    rename_table,
    rename_column,
    add_table,
    add_column,
    alter_type,
    alter_nullable,
    alter_default,
    alter_primary_key,
    drop_index,
    drop_unique,
    drop_foreign_key,
    add_index,
    add_unique,
    add_foreign_key,
    drop_column,
    drop_table,
};

/// A rename the planner applies before comparing: rename_table("old", "new") or
/// rename_column("users", "old", "new"). A rename whose old name is not in the database (already
/// done) is skipped, so the same options can be given at every start-up.
struct Rename {
    std::string table;  // the column's table (its new name); "" for a table rename
    std::string from;
    std::string to;
};
inline Rename rename_table(std::string from, std::string to) { return {"", std::move(from), std::move(to)}; }
inline Rename rename_column(std::string table, std::string from, std::string to) {
    return {std::move(table), std::move(from), std::move(to)};
}

struct MigrationOptions {
    std::vector<Rename> renames{};
    /// Tables of the database the plan leaves alone (never dropped or changed), besides
    /// athanor's own athanor_schema_version.
    std::vector<std::string> exclude_tables{};
    /// Only what loses nothing (sa::upgrade()): ops that would drop a table or a column or
    /// narrow a type are left out and listed by MigrationPlan::deferred(); on SQLite, where a
    /// table is rebuilt to change it, a table with such an op is rebuilt later, with it.
    bool safe_only = false;
};

/// One change of the plan. describe() says it in words: "add column users.nickname".
class MigrationOp {
public:
    MigrationOp(MigrationOpKind kind, std::string table, std::string name, std::string detail, bool destructive)
        : kind_(kind), table_(std::move(table)), name_(std::move(name)), detail_(std::move(detail)),
          destructive_(destructive) {}

    MigrationOpKind kind() const noexcept { return kind_; }
    /// The table (its name after the plan's renames).
    const std::string& table() const noexcept { return table_; }
    /// The column, index or constraint; for renames the old name; "" for add/drop table.
    const std::string& name() const noexcept { return name_; }
    /// What changes, in words: "add column users.nickname", "change type of users.name from
    /// VARCHAR(50) to VARCHAR(20) (narrowing: values may be cut)".
    std::string describe() const;
    /// Whether it loses rows or values: drop table, drop column, a narrowing type change.
    bool destructive() const noexcept { return destructive_; }
    /// Whether it is carried out by rebuilding its table (SQLite: new table, rows copied, old
    /// dropped, new renamed, indexes and triggers recreated).
    bool batch() const noexcept { return batch_; }
    /// Its statements for the plan's dialect, as apply() runs them; for a batch() op, the whole
    /// rebuild of its table (shared with the table's other ops). Empty for a deferred op.
    const std::vector<std::string>& sql() const noexcept { return sql_; }

private:
    friend class MigrationPlanner;
    MigrationOpKind kind_;
    std::string table_;
    std::string name_;
    std::string detail_;
    bool destructive_;
    bool batch_ = false;
    std::vector<std::string> sql_;
};

struct ApplyOptions {
    /// Without it, apply() of a destructive plan throws MigrationError and runs nothing.
    bool allow_data_loss = false;
    /// Called before each operation's statements run (progress; it may throw to abort, which
    /// rolls everything back).
    std::function<void(const MigrationOp&)> on_op{};
};

class MigrationPlan {
public:
    MigrationPlan() = default;

    const std::vector<MigrationOp>& operations() const noexcept { return ops_; }
    bool empty() const noexcept { return ops_.empty(); }
    /// True if any operation would lose data (MigrationOp::destructive()).
    bool destructive() const noexcept;
    /// With MigrationOptions::safe_only: the operations left out.
    const std::vector<MigrationOp>& deferred() const noexcept { return deferred_; }
    /// The statements apply() runs, in order, without running them.
    std::vector<std::string> sql() const;
    /// Each operation in words followed by its SQL (athanor-schema diff).
    std::string to_string() const;
    /// The dialect the plan was made for ("sqlite", "postgresql"); apply() refuses another.
    const std::string& dialect_name() const noexcept { return dialect_; }

    /// Runs the plan in one transaction: all of it or nothing. Throws MigrationError (and
    /// changes nothing) when the plan is destructive without allow_data_loss, when a check
    /// fails (NULLs where NOT NULL is asked, rows in a table gaining a NOT NULL column without
    /// a server default, broken foreign keys after a rebuild), or when a statement fails (the
    /// database's error is in the message). On SQLite a plan that rebuilds tables runs with
    /// foreign keys off (see SchemaWorkOptions) and checks them all before COMMIT.
    void apply(Connectable& bind, const ApplyOptions& options = {}) const;

private:
    friend class MigrationPlanner;
    struct Check {
        std::string count_sql;  // must count 0
        std::string message;
    };
    struct Step {
        std::vector<std::size_t> ops;
        std::vector<Check> checks;
        std::vector<std::string> sql;
    };
    std::vector<MigrationOp> ops_;
    std::vector<MigrationOp> deferred_;
    std::vector<Step> steps_;
    std::string dialect_;
    bool rebuilds_ = false;  // a SQLite table rebuild: foreign keys off, checked at the end
};

/// Compares the live database of `bind` (reflected) with `metadata` and plans what makes the
/// database match it: tables, columns (type, nullability, server default), primary keys,
/// indexes, unique and foreign key constraints. Reads only. Throws MigrationError for a
/// rename that cannot be done (its new name is taken).
MigrationPlan plan_migration(Connectable& bind, const MetaData& metadata, const MigrationOptions& options = {});

/// The table upgrade() keeps its record in; plans never touch it.
inline constexpr const char* kSchemaVersionTable = "athanor_schema_version";

}  // namespace athanor
