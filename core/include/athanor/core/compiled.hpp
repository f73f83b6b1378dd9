// The compiled form of a statement for one dialect: SQL text plus an ordered list of bind
// slots saying where each positional parameter's value comes from.
#pragma once

#include <athanor/core/value.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace athanor {

class Column;
class Table;

struct BindSlot {
    enum class Source : std::uint8_t {
        literal,         // a value fixed in the statement
        param,           // looked up by key in the execution's Params
        column_default,  // an INSERT column: the Params value if given, else the column default
    };
    Source source = Source::literal;
    std::string key;
    Value value;
    const Column* column = nullptr;  // for column_default
    /// For a literal of the statement: its position among the statement's literals in shape
    /// order (see Executable::compile), so a cached compilation can take another statement's
    /// values; -1 for others.
    int literal_index = -1;
    /// While compiling only: the expression node the slot came from (never dereferenced).
    const void* origin = nullptr;
};

struct Compiled {
    enum class Kind : std::uint8_t { select, insert, update, delete_, text, ddl };

    std::string sql;
    std::vector<BindSlot> binds;
    /// Result column names (SELECT or RETURNING), in order.
    std::vector<std::string> keys;
    Kind kind = Kind::select;
    /// Target table of INSERT / UPDATE / DELETE.
    const Table* table = nullptr;
    bool returning = false;
    /// INSERT on a dialect with implicit RETURNING (PostgreSQL): the RETURNING column holding
    /// the new autoincrement key, read as the execution's lastrowid; -1 when none. A column
    /// at or past keys.size() was added for that alone and is not shown as a result column.
    int lastrowid_column = -1;
    /// When the RETURNING was added only for lastrowid: the SQL without it, for executions that
    /// do not need the new keys (executemany, bulk inserts without return_defaults).
    std::string sql_without_keys;
    /// When the SQL was generated (echo reports "[generated in ...]", "[cached since ...]").
    std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();

    /// Fills `out` with pointers to the positional values for one execution, without copying
    /// them: into `params`, into this Compiled, or into `scratch` (column defaults evaluated
    /// now; cleared first). The pointers live as long as those three. Throws
    /// MissingParameterError naming the bind parameter when a required key is absent.
    void bind_values(const Params& params, std::vector<const Value*>& out,
                     std::vector<Value>& scratch) const;
    /// Number of column_default slots (the size `scratch` may reach).
    std::size_t default_slots = 0;
};

}  // namespace athanor
