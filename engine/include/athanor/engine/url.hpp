// Database URLs, as SQLAlchemy spells them:
//   sqlite://, sqlite:///:memory:, sqlite:///rel.db, sqlite:////abs/path.db
//   postgresql://user:password@host:port/database?option=value (also postgresql+libpq://;
//   postgresql:///db?host=/var/run/postgresql for a unix socket). User, password, database and
//   query values may be %-escaped. PostgreSQL query options go to libpq as connection
//   keywords (sslmode, connect_timeout, application_name, host, options...).
#pragma once

#include <map>
#include <optional>
#include <string>

namespace athanor {

struct URL {
    std::string drivername;  // "sqlite", "postgresql" or "<backend>+<driver>"
    std::string username;
    std::optional<std::string> password;
    std::string host;
    std::optional<int> port;
    std::string database;    // SQLite: file path, or "" / ":memory:" for an in-memory database
    std::map<std::string, std::string> query;

    /// The backend part of drivername: "sqlite" or "postgresql".
    std::string backend() const;
    bool is_memory() const { return database.empty() || database == ":memory:"; }
    /// The URL as text; the password shows as "***" unless hide_password is false.
    std::string render(bool hide_password = true) const;
};

/// Parses a URL; throws ArgumentError naming the URL when it is malformed or its backend is
/// not supported.
URL make_url(const std::string& url);

}  // namespace athanor
