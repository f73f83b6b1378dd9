// athanor engine: create_engine, Connection, Transaction, Result, the SQLite and PostgreSQL
// dialects, run_transaction.
#pragma once

#include <athanor/engine/connection.hpp>
#include <athanor/engine/engine.hpp>
#include <athanor/engine/postgresql_dialect.hpp>
#include <athanor/engine/result.hpp>
#include <athanor/engine/sqlite_dialect.hpp>
#include <athanor/engine/upgrade.hpp>
#include <athanor/engine/url.hpp>
