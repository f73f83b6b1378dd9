// The PostgreSQL dialect, rendering what SQLAlchemy's postgresql dialect renders: numbered
// "$1" placeholders (libpq's), SERIAL / BIGSERIAL for an autoincrement key, TIMESTAMP WITHOUT
// TIME ZONE, BYTEA, native ILIKE, true/false literals, LIMIT ALL, RETURNING (also implicitly
// for new keys); reflection through pg_catalog, in the connection's current schema.
//
// Immutable; safe to share between threads.
#pragma once

#include <athanor/core/dialect.hpp>

namespace athanor {

class PGDialect : public Dialect {
public:
    std::string_view name() const noexcept override { return "postgresql"; }
    bool requires_quotes(std::string_view ident) const override;
    std::string bind_placeholder(std::size_t index) const override { return "$" + std::to_string(index + 1); }
    bool supports_returning() const noexcept override { return true; }
    bool supports_ilike() const noexcept override { return true; }
    bool implicit_returning() const noexcept override { return true; }
    bool returning_qualified() const noexcept override { return true; }
    bool limit_all() const noexcept override { return true; }
    bool supports_alter() const noexcept override { return true; }
    std::string true_literal() const override { return "true"; }
    std::string false_literal() const override { return "false"; }
    std::string type_ddl(const TypeEngine& type) const override;
    std::string column_type_ddl(const Column& column) const override;

    bool has_table(SchemaConnection& conn, std::string_view table) const override;
    std::vector<std::string> get_table_names(SchemaConnection& conn) const override;
    ReflectedTable reflect_table(SchemaConnection& conn, std::string_view table) const override;

    /// Maps format_type() text ("character varying(50)", "numeric(10,2)") to a type engine;
    /// an unknown type maps to Text.
    static TypeEngine type_from_pg(const std::string& formatted);
};

}  // namespace athanor
