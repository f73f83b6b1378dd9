// athanor engine: create_engine, Connection, Transaction, Result, the SQLite dialect.
#pragma once

#include <athanor/engine/connection.hpp>
#include <athanor/engine/engine.hpp>
#include <athanor/engine/result.hpp>
#include <athanor/engine/url.hpp>
