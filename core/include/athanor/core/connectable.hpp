// What core/ needs from a live database to run DDL and reflection, declared here and
// implemented by engine/ (Engine and Connection), so core never depends on engine.
#pragma once

#include <athanor/core/value.hpp>

#include <functional>
#include <string>
#include <vector>

namespace athanor {

class Dialect;

/// A connection inside a transaction, as DDL and reflection see it.
class SchemaConnection {
public:
    virtual ~SchemaConnection() = default;
    virtual const Dialect& dialect() const = 0;
    /// Executes a DDL statement (echo: the SQL, then "[no key ...] ()").
    virtual void execute_ddl(const std::string& sql) = 0;
    /// Executes literal SQL and returns every row (echo: the SQL, then "[raw sql] ()").
    virtual std::vector<std::vector<Value>> execute_raw(const std::string& sql) = 0;
    /// Reports something reflection had to skip (logged as a WARNING by the engine).
    virtual void warn(const std::string& message) { (void)message; }
};

/// How schema work runs (see Connectable::run_schema_work).
struct SchemaWorkOptions {
    /// Foreign keys are not enforced while the work runs (SQLite's PRAGMA foreign_keys=OFF,
    /// which only takes effect outside a transaction): a table rebuilt by a migration is
    /// dropped and renamed without its children's ON DELETE actions firing. Enforcement is
    /// restored afterwards, whether the work succeeds or not. No effect on PostgreSQL.
    bool foreign_keys_off = false;
};

/// Something DDL can run against: an Engine (a new connection and transaction, committed at
/// the end, rolled back if the work throws) or a Connection (its current transaction, left
/// open for the caller to commit).
class Connectable {
public:
    virtual ~Connectable() = default;
    virtual void run_schema_work(const std::function<void(SchemaConnection&)>& work) = 0;
    /// The same with options. A Connection raises MigrationError for foreign_keys_off when
    /// SQLite enforces foreign keys on it (the setting cannot change inside its transaction).
    virtual void run_schema_work(const std::function<void(SchemaConnection&)>& work,
                                 const SchemaWorkOptions& options) {
        (void)options;
        run_schema_work(work);
    }
};

}  // namespace athanor
