// Database URLs, as SQLAlchemy spells them: sqlite://, sqlite:///:memory:, sqlite:///rel.db,
// sqlite:////abs/path.db (optionally sqlite+pysqlite://...; query options are accepted and kept).
#pragma once

#include <map>
#include <string>

namespace athanor {

struct URL {
    std::string drivername;  // "sqlite" or "sqlite+driver"
    std::string database;    // file path, or "" / ":memory:" for an in-memory database
    std::map<std::string, std::string> query;

    /// The backend part of drivername: "sqlite".
    std::string backend() const;
    bool is_memory() const { return database.empty() || database == ":memory:"; }
    std::string render() const;
};

/// Parses a URL; throws ArgumentError naming the URL when it is malformed or its backend is
/// not supported.
URL make_url(const std::string& url);

}  // namespace athanor
