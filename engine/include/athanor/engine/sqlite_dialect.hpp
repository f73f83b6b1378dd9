// The SQLite dialect: qmark parameters, RETURNING from SQLite 3.35, SAVEPOINT, and reflection
// through sqlite_master and the table PRAGMAs.
#pragma once

#include <athanor/core/dialect.hpp>

namespace athanor {

class SQLiteDialect : public Dialect {
public:
    SQLiteDialect();
    std::string_view name() const noexcept override { return "sqlite"; }
    bool supports_returning() const noexcept override { return returning_; }
    bool limit_offset_together() const noexcept override { return true; }
    bool supports_is_distinct_from() const noexcept override { return false; }
    bool has_table(SchemaConnection& conn, std::string_view table) const override;
    std::vector<std::string> get_table_names(SchemaConnection& conn) const override;
    ReflectedTable reflect_table(SchemaConnection& conn, std::string_view table) const override;

    /// Maps a declared SQLite column type ("VARCHAR(50)", "NUMERIC(10, 2)") to a type engine,
    /// by SQLite's affinity rules when the name is not one athanor emits.
    static TypeEngine type_from_ddl(const std::string& declared);

private:
    bool returning_;
};

}  // namespace athanor
