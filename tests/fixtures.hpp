// Shared test fixtures: the tutorial's users/addresses schema on an in-memory engine.
#pragma once

#include <athanor/athanor.hpp>

#include <gtest/gtest.h>

namespace sa = athanor;

struct UsersSchema {
    sa::MetaData metadata;
    sa::Table& users = metadata.table("users",
        sa::Column("id", sa::Integer(), sa::primary_key()),
        sa::Column("name", sa::String(50), sa::nullable(false), sa::unique()),
        sa::Column("fullname", sa::String(50)),
        sa::Column("password", sa::String(12)));
    sa::Table& addresses = metadata.table("addresses",
        sa::Column("id", sa::Integer(), sa::primary_key()),
        sa::Column("email", sa::String(100), sa::nullable(false), sa::index()),
        sa::Column("user_id", sa::Integer(), sa::ForeignKey("users.id", {.ondelete = "CASCADE"})));
};

class MemoryDb : public ::testing::Test, public UsersSchema {
protected:
    std::shared_ptr<sa::Engine> engine = sa::create_engine("sqlite://");
    void SetUp() override { metadata.create_all(*engine); }
};

/// Compiles for SQLite without a database (SQLAlchemy's assert_compile).
inline std::string sql(const sa::Executable& stmt) { return stmt.to_string(sa::sqlite_dialect()); }
