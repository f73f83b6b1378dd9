// Forward declarations of athanor's engine types.
#pragma once

namespace athanor {
class Engine;
class Connection;
class Transaction;
class Result;
class Row;
struct URL;
struct EngineOptions;
class SQLiteDialect;
class PGDialect;
}  // namespace athanor
