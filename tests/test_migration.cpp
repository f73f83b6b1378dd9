// Schema evolution: plan_migration / MigrationPlan::apply / upgrade, on tables holding rows.
// Every op is checked by the rows and values left afterwards, not only by its SQL.
// API.md writes {.allow_data_loss = true}: designated initializers that leave members to their
// defaults, which GCC 12 flags under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "fixtures.hpp"

#include <sys/wait.h>

#include <filesystem>

namespace {

std::int64_t count(sa::Engine& e, const std::string& table) {
    auto c = e.connect();
    return c.execute(sa::text("SELECT count(*) FROM " + table)).scalar<std::int64_t>();
}

std::vector<std::string> column_names(sa::Engine& e, const std::string& table) {
    sa::MetaData m;
    m.reflect(e, {table});
    std::vector<std::string> out;
    for (const auto& c : m.get_table(table).columns()) out.push_back(c->name());
    return out;
}

bool has_table(sa::Engine& e, const std::string& table) {
    sa::MetaData m;
    m.reflect(e);
    return m.contains(table);
}

std::vector<std::string> describe(const sa::MigrationPlan& p) {
    std::vector<std::string> out;
    for (const auto& op : p.operations()) out.push_back(op.describe());
    return out;
}

// Version 1 of an application's schema, with three users and their addresses.
void v1(sa::MetaData& m) {
    m.table("users", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)),
            sa::Column("fullname", sa::String(100)));
    m.table("addresses", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("email", sa::String(100)),
            sa::Column("user_id", sa::Integer(), sa::ForeignKey("users.id", {.ondelete = "CASCADE"})));
}

void fill_v1(sa::Engine& e) {
    sa::MetaData m;
    v1(m);
    m.create_all(e);
    auto c = e.connect();
    c.execute(m.get_table("users").insert(), std::vector<sa::Params>{{{"id", 1}, {"name", "ed"}, {"fullname", "Ed Jones"}},
                                                                      {{"id", 2}, {"name", "wendy"}, {"fullname", "Wendy W"}},
                                                                      {{"id", 3}, {"name", "mary"}, {"fullname", nullptr}}});
    c.execute(m.get_table("addresses").insert(),
              std::vector<sa::Params>{{{"id", 1}, {"email", "ed@x"}, {"user_id", 1}}, {{"id", 2}, {"email", "w@x"}, {"user_id", 2}}});
    c.commit();
}

// v1 with another definition of its users table.
template <class... Items>
void v1_users(sa::MetaData& m, Items&&... items) {
    v1(m);
    m.remove("users");
    m.table("users", std::forward<Items>(items)...);
}

// Runs statements in one transaction, committed (changes made "elsewhere" between two plans).
void run_sql(sa::Engine& e, std::initializer_list<std::string> statements) {
    auto c = e.connect();
    for (const auto& sql : statements) c.execute(sa::text(sql));
    c.commit();
}

}  // namespace

class Migration : public ::testing::Test {
protected:
    std::shared_ptr<sa::Engine> engine = testdb::engine({.foreign_keys = true});
};

TEST_F(Migration, AnIdenticalSchemaPlansNothing) {
    sa::MetaData m;
    m.table("kinds", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("code", sa::String(20), sa::unique()),
            sa::Column("big", sa::BigInteger()), sa::Column("note", sa::Text()), sa::Column("ok", sa::Boolean()),
            sa::Column("ratio", sa::Float()), sa::Column("price", sa::Numeric(10, 2)), sa::Column("born", sa::Date()),
            sa::Column("seen", sa::DateTime(), sa::server_default_sql("CURRENT_TIMESTAMP")),
            sa::Column("blob", sa::LargeBinary()), sa::Column("label", sa::String(30), sa::server_default("none")),
            sa::Column("rank", sa::Integer(), sa::index()), sa::UniqueConstraint{{"big", "note"}},
            sa::Index{"ix_kinds_ratio_born", {"ratio", "born"}});
    v1(m);
    m.create_all(*engine);
    auto plan = sa::plan_migration(*engine, m);
    EXPECT_TRUE(plan.empty()) << plan.to_string();

    // Reflected, written as JSON, read back: the same schema, still nothing to do.
    sa::MetaData reflected;
    reflected.reflect(*engine);
    sa::MetaData again = sa::MetaData::from_json(reflected.to_json());
    auto plan2 = sa::plan_migration(*engine, again);
    EXPECT_TRUE(plan2.empty()) << plan2.to_string();
}

TEST_F(Migration, AddTableColumnsAndIndexKeepEveryRow) {
    fill_v1(*engine);
    sa::MetaData m;
    m.table("users", sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("name", sa::String(50), sa::nullable(false), sa::index()), sa::Column("fullname", sa::String(100)),
            sa::Column("nickname", sa::String(50)),
            sa::Column("status", sa::String(10), sa::nullable(false), sa::server_default("active")));
    m.table("addresses", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("email", sa::String(100)),
            sa::Column("user_id", sa::Integer(), sa::ForeignKey("users.id", {.ondelete = "CASCADE"})));
    m.table("tags", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("label", sa::String(20)));

    auto plan = sa::plan_migration(*engine, m);
    EXPECT_FALSE(plan.destructive());
    EXPECT_EQ(describe(plan), (std::vector<std::string>{"add table tags", "add column users.nickname",
                                                         "add column users.status", "add index ix_users_name on users (name)"}));
    for (const auto& op : plan.operations()) EXPECT_FALSE(op.batch()) << op.describe();  // ALTER TABLE does these
    EXPECT_EQ(plan.operations()[1].sql(),
              std::vector<std::string>{"ALTER TABLE users ADD COLUMN nickname VARCHAR(50)"});
    EXPECT_EQ(plan.operations()[0].sql().front().rfind("CREATE TABLE tags (", 0), 0u);
    plan.apply(*engine);

    EXPECT_TRUE(sa::plan_migration(*engine, m).empty());
    EXPECT_EQ(count(*engine, "users"), 3);
    EXPECT_EQ(count(*engine, "addresses"), 2);
    auto c = engine->connect();
    const auto& users = m.get_table("users");
    auto rows = c.execute(sa::select(users).order_by(users.c["id"])).all();
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].get<std::string>("fullname"), "Ed Jones");
    EXPECT_EQ(rows[2].get<std::optional<std::string>>("fullname"), std::nullopt);
    EXPECT_EQ(rows[1].get<std::optional<std::string>>("nickname"), std::nullopt);
    EXPECT_EQ(rows[1].get<std::string>("status"), "active");
}

TEST_F(Migration, DroppingAColumnIsRefusedWithoutAllowDataLossThenKeepsTheOtherValues) {
    fill_v1(*engine);
    sa::MetaData m;
    v1_users(m, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)));
    auto plan = sa::plan_migration(*engine, m);
    ASSERT_EQ(describe(plan), (std::vector<std::string>{"drop column users.fullname (its values are lost)"}));
    EXPECT_TRUE(plan.destructive());
    EXPECT_THROW(plan.apply(*engine), sa::MigrationError);
    EXPECT_EQ(column_names(*engine, "users"), (std::vector<std::string>{"id", "name", "fullname"}));  // untouched

    plan.apply(*engine, {.allow_data_loss = true});
    EXPECT_EQ(column_names(*engine, "users"), (std::vector<std::string>{"id", "name"}));
    EXPECT_EQ(count(*engine, "users"), 3);
    // Children referring to the rebuilt table kept their rows: no ON DELETE CASCADE fired.
    EXPECT_EQ(count(*engine, "addresses"), 2);
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT name FROM users WHERE id = 2")).scalar<std::string>(), "wendy");
    EXPECT_TRUE(sa::plan_migration(*engine, m).empty());
}

TEST_F(Migration, TypeChangesWidenFreelyAndNarrowOnlyWithAllowDataLoss) {
    fill_v1(*engine);
    sa::MetaData wide;
    v1_users(wide, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(200), sa::nullable(false)),
               sa::Column("fullname", sa::Text()));
    auto plan = sa::plan_migration(*engine, wide);
    EXPECT_FALSE(plan.destructive()) << plan.to_string();
    EXPECT_EQ(plan.operations().size(), 2u) << plan.to_string();
    plan.apply(*engine);
    EXPECT_TRUE(sa::plan_migration(*engine, wide).empty());

    sa::MetaData narrow;
    v1_users(narrow, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(10), sa::nullable(false)),
                 sa::Column("fullname", sa::Text()));
    auto p2 = sa::plan_migration(*engine, narrow);
    ASSERT_EQ(p2.operations().size(), 1u);
    EXPECT_TRUE(p2.destructive());
    EXPECT_NE(p2.operations()[0].describe().find("narrowing"), std::string::npos);
    EXPECT_THROW(p2.apply(*engine), sa::MigrationError);
    p2.apply(*engine, {.allow_data_loss = true});
    EXPECT_TRUE(sa::plan_migration(*engine, narrow).empty());
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT name FROM users WHERE id = 3")).scalar<std::string>(), "mary");
    EXPECT_EQ(count(*engine, "users"), 3);
}

TEST_F(Migration, NotNullOverNullsFailsAndLeavesEverythingAsItWas) {
    fill_v1(*engine);
    sa::MetaData m;
    v1_users(m, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)),
            sa::Column("fullname", sa::String(100), sa::nullable(false)), sa::Column("nickname", sa::String(20)));
    auto plan = sa::plan_migration(*engine, m);
    ASSERT_EQ(plan.operations().size(), 2u) << plan.to_string();
    try {
        plan.apply(*engine);
        FAIL() << "expected MigrationError";
    } catch (const sa::MigrationError& e) {
        EXPECT_NE(std::string(e.what()).find("users.fullname NOT NULL: it holds NULLs"), std::string::npos) << e.what();
    }
    // The column added before the failing op is not there either.
    EXPECT_EQ(column_names(*engine, "users"), (std::vector<std::string>{"id", "name", "fullname"}));
    auto c = engine->connect();
    c.execute(sa::text("UPDATE users SET fullname = 'Mary M' WHERE id = 3"));
    c.commit();
    plan.apply(*engine);
    EXPECT_TRUE(sa::plan_migration(*engine, m).empty());
    EXPECT_EQ(count(*engine, "users"), 3);
}

TEST_F(Migration, ANotNullColumnWithoutDefaultNeedsAnEmptyTable) {
    fill_v1(*engine);
    sa::MetaData m;
    v1_users(m, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)),
            sa::Column("fullname", sa::String(100)), sa::Column("age", sa::Integer(), sa::nullable(false)));
    auto plan = sa::plan_migration(*engine, m);
    EXPECT_THROW(plan.apply(*engine), sa::MigrationError);
    EXPECT_EQ(count(*engine, "users"), 3);
    run_sql(*engine, {"DELETE FROM addresses", "DELETE FROM users"});
    plan.apply(*engine);
    EXPECT_TRUE(sa::plan_migration(*engine, m).empty());
}

TEST_F(Migration, UniqueAndForeignKeyConstraintsAreAddedAndDroppedOverRows) {
    fill_v1(*engine);
    sa::MetaData m;
    m.table("users", sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("name", sa::String(50), sa::nullable(false), sa::unique()), sa::Column("fullname", sa::String(100)));
    m.table("addresses", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("email", sa::String(100)),
            sa::Column("user_id", sa::Integer()));  // the foreign key goes
    auto plan = sa::plan_migration(*engine, m);
    EXPECT_EQ(describe(plan), (std::vector<std::string>{"drop foreign key on addresses (user_id) -> users",
                                                         "add unique constraint on users (name)"}))
        << plan.to_string();
    plan.apply(*engine);
    EXPECT_TRUE(sa::plan_migration(*engine, m).empty());
    EXPECT_EQ(count(*engine, "addresses"), 2);
    {
        auto c = engine->connect();
        EXPECT_THROW(c.execute(sa::text("INSERT INTO users (id, name) VALUES (9, 'ed')")), sa::IntegrityError);
        c.rollback();
        c.execute(sa::text("INSERT INTO addresses (id, email, user_id) VALUES (7, 'z@x', 99)"));  // no key any more
        c.commit();
    }
    // The key back, over a row that breaks it: refused, nothing changed.
    sa::MetaData back;
    v1_users(back, sa::Column("id", sa::Integer(), sa::primary_key()),
               sa::Column("name", sa::String(50), sa::nullable(false), sa::unique()), sa::Column("fullname", sa::String(100)));
    auto p2 = sa::plan_migration(*engine, back);
    EXPECT_THROW(p2.apply(*engine), sa::MigrationError);
    EXPECT_EQ(count(*engine, "addresses"), 3);
    run_sql(*engine, {"DELETE FROM addresses WHERE id = 7"});
    p2.apply(*engine);
    EXPECT_TRUE(sa::plan_migration(*engine, back).empty());
}

TEST_F(Migration, RenamesAreDeclaredAndKeepTheData) {
    fill_v1(*engine);
    sa::MetaData m;
    m.table("people", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)),
            sa::Column("full_name", sa::String(100)));
    m.table("addresses", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("email", sa::String(100)),
            sa::Column("user_id", sa::Integer(), sa::ForeignKey("people.id", {.ondelete = "CASCADE"})));
    sa::MigrationOptions opts{.renames = {sa::rename_table("users", "people"),
                                          sa::rename_column("people", "fullname", "full_name")}};
    // Undeclared, a rename is a drop and an add: destructive.
    EXPECT_TRUE(sa::plan_migration(*engine, m).destructive());
    auto plan = sa::plan_migration(*engine, m, opts);
    EXPECT_EQ(describe(plan), (std::vector<std::string>{"rename table users to people",
                                                         "rename column people.fullname to full_name"}))
        << plan.to_string();
    plan.apply(*engine);
    EXPECT_TRUE(sa::plan_migration(*engine, m, opts).empty());  // declared renames already done: skipped
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT full_name FROM people WHERE id = 1")).scalar<std::string>(), "Ed Jones");
    EXPECT_EQ(count(*engine, "addresses"), 2);
}

TEST_F(Migration, DropTableIsDestructiveAndDependentsGoFirst) {
    fill_v1(*engine);
    sa::MetaData m;  // nothing left
    auto plan = sa::plan_migration(*engine, m);
    EXPECT_EQ(describe(plan), (std::vector<std::string>{"drop table addresses (its rows are lost)",
                                                         "drop table users (its rows are lost)"}));
    EXPECT_THROW(plan.apply(*engine), sa::MigrationError);
    EXPECT_TRUE(has_table(*engine, "users"));
    plan.apply(*engine, {.allow_data_loss = true});
    EXPECT_FALSE(has_table(*engine, "users"));
    EXPECT_FALSE(has_table(*engine, "addresses"));
}

TEST_F(Migration, AFailingStatementHalfWayRollsEverythingBack) {
    fill_v1(*engine);
    run_sql(*engine, {"INSERT INTO users (id, name, fullname) VALUES (4, 'ed2', 'Ed Jones')"});
    sa::MetaData m;
    v1_users(m, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)),
            sa::Column("fullname", sa::String(100), sa::unique()), sa::Column("age", sa::Integer()));
    m.table("tags", sa::Column("id", sa::Integer(), sa::primary_key()));
    auto plan = sa::plan_migration(*engine, m);
    std::vector<std::string> seen;
    EXPECT_THROW(plan.apply(*engine, {.on_op = [&](const sa::MigrationOp& op) { seen.push_back(op.describe()); }}),
                 sa::MigrationError);  // "Ed Jones" twice: the UNIQUE cannot be
    EXPECT_GE(seen.size(), 2u);
    EXPECT_FALSE(has_table(*engine, "tags"));
    EXPECT_EQ(column_names(*engine, "users"), (std::vector<std::string>{"id", "name", "fullname"}));
    EXPECT_EQ(count(*engine, "users"), 4);
}

TEST_F(Migration, AProcessKilledHalfWayLeavesTheOldSchema) {
    // A real database file (or the server): the child dies between two operations of a plan,
    // with no chance to roll back; the database must still hold the old schema and rows.
    std::string path = (std::filesystem::temp_directory_path() / ("athanor_mig_" + std::to_string(::getpid()) + ".db")).string();
    std::filesystem::remove(path);
    auto e = testdb::postgres() ? engine : sa::create_engine("sqlite:///" + path, {.foreign_keys = true});
    fill_v1(*e);
    sa::MetaData m;
    v1_users(m, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)),
            sa::Column("fullname", sa::String(100)), sa::Column("age", sa::Integer()), sa::Column("nick", sa::String(9)));
    m.table("tags", sa::Column("id", sa::Integer(), sa::primary_key()));
    auto plan = sa::plan_migration(*e, m);
    ASSERT_GE(plan.operations().size(), 3u);
    e->dispose();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        auto child = testdb::postgres() ? sa::create_engine(testdb::pg_url()) : sa::create_engine("sqlite:///" + path);
        int ops = 0;
        try {
            plan.apply(*child, {.on_op = [&](const sa::MigrationOp&) {
                                    if (++ops == 3) ::_exit(42);  // killed: no unwinding, no ROLLBACK
                                }});
        } catch (...) {
        }
        ::_exit(1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 42);
    auto after = testdb::postgres() ? sa::create_engine(testdb::pg_url()) : sa::create_engine("sqlite:///" + path);
    EXPECT_FALSE(has_table(*after, "tags"));
    EXPECT_EQ(column_names(*after, "users"), (std::vector<std::string>{"id", "name", "fullname"}));
    EXPECT_EQ(count(*after, "users"), 3);
    EXPECT_EQ(describe(sa::plan_migration(*after, m)), describe(plan));  // the same work is still to do
    sa::plan_migration(*after, m).apply(*after);
    EXPECT_TRUE(sa::plan_migration(*after, m).empty());
    after->dispose();
    std::filesystem::remove(path);
}

TEST_F(Migration, SqliteRebuildKeepsTriggersAndIndexes) {
    SQLITE_ONLY("triggers are read from sqlite_master for the table rebuild");
    fill_v1(*engine);
    run_sql(*engine, {"CREATE TABLE audit (n INTEGER)",
                      "CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN INSERT INTO audit VALUES (new.id); END",
                      "CREATE INDEX ix_users_fullname ON users (fullname)"});
    sa::MetaData m;
    v1_users(m, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(80), sa::nullable(false)),
            sa::Column("fullname", sa::String(100)), sa::Index{"ix_users_fullname", {"fullname"}});
    auto plan = sa::plan_migration(*engine, m, {.exclude_tables = {"audit"}});
    ASSERT_EQ(plan.operations().size(), 1u) << plan.to_string();
    EXPECT_TRUE(plan.operations()[0].batch());
    auto sql = plan.sql();
    EXPECT_NE(std::find(sql.begin(), sql.end(), "DROP TABLE users"), sql.end());
    plan.apply(*engine);
    auto c = engine->connect();
    c.execute(sa::text("INSERT INTO users (id, name) VALUES (10, 'new')"));
    EXPECT_EQ(c.execute(sa::text("SELECT count(*) FROM audit")).scalar<std::int64_t>(), 1);  // the trigger is back
    EXPECT_EQ(c.execute(sa::text("SELECT count(*) FROM sqlite_master WHERE name = 'ix_users_fullname'")).scalar<std::int64_t>(), 1);
    c.commit();
    EXPECT_TRUE(sa::plan_migration(*engine, m, {.exclude_tables = {"audit"}}).empty());
}

// ---- upgrade -----------------------------------------------------------------------------------

TEST_F(Migration, UpgradeAppliesWhatIsSafeRunsStepsOnceAndRecordsThem) {
    fill_v1(*engine);
    EXPECT_EQ(sa::schema_version(*engine), -1);
    sa::MetaData m;
    m.table("users", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)),
            sa::Column("nickname", sa::String(100)));  // fullname goes, after its values move
    m.table("addresses", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("email", sa::String(100)),
            sa::Column("user_id", sa::Integer(), sa::ForeignKey("users.id", {.ondelete = "CASCADE"})));
    int runs = 0;
    sa::Migrations steps;
    steps.step(1, "nicknames from full names", [&](sa::Connection& c) {
        ++runs;
        c.execute(sa::text("UPDATE users SET nickname = fullname"));
    });
    auto r = sa::upgrade(*engine, m, steps);
    EXPECT_EQ(r.steps_run, std::vector<int>{1});
    ASSERT_EQ(r.deferred.size(), 1u);  // the drop waits for allow_data_loss
    EXPECT_EQ(r.deferred[0].describe(), "drop column users.fullname (its values are lost)");
    EXPECT_EQ(r.version, 1);
    EXPECT_EQ(sa::schema_version(*engine), 1);
    {
        auto c = engine->connect();
        EXPECT_EQ(c.execute(sa::text("SELECT nickname FROM users WHERE id = 1")).scalar<std::string>(), "Ed Jones");
    }
    auto r2 = sa::upgrade(*engine, m, steps, {.allow_data_loss = true});
    EXPECT_TRUE(r2.steps_run.empty());
    EXPECT_EQ(runs, 1);
    EXPECT_TRUE(r2.deferred.empty());
    EXPECT_EQ(column_names(*engine, "users"), (std::vector<std::string>{"id", "name", "nickname"}));
    EXPECT_EQ(count(*engine, "users"), 3);
    EXPECT_EQ(count(*engine, "addresses"), 2);
    auto r3 = sa::upgrade(*engine, m, steps);
    EXPECT_TRUE(r3.applied.empty());
    EXPECT_TRUE(r3.steps_run.empty());
}

TEST_F(Migration, AFailedStepIsRolledBackAndRunsAgainNextTime) {
    fill_v1(*engine);
    sa::MetaData m;
    v1(m);
    bool fail = true;
    sa::Migrations steps;
    steps.step(1, "one", [](sa::Connection& c) { c.execute(sa::text("UPDATE users SET fullname = 'one'")); })
        .step(2, "two", [&](sa::Connection& c) {
            c.execute(sa::text("UPDATE users SET name = 'two'"));
            if (fail) throw std::runtime_error("disk on fire");
        });
    try {
        sa::upgrade(*engine, m, steps);
        FAIL() << "expected MigrationError";
    } catch (const sa::MigrationError& e) {
        EXPECT_NE(std::string(e.what()).find("step 2 (two) failed"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("disk on fire"), std::string::npos);
    }
    EXPECT_EQ(sa::schema_version(*engine), 1);
    {
        auto c = engine->connect();
        EXPECT_EQ(c.execute(sa::text("SELECT count(*) FROM users WHERE name = 'two'")).scalar<std::int64_t>(), 0);
        EXPECT_EQ(c.execute(sa::text("SELECT count(*) FROM users WHERE fullname = 'one'")).scalar<std::int64_t>(), 3);
    }
    fail = false;
    auto r = sa::upgrade(*engine, m, steps);
    EXPECT_EQ(r.steps_run, std::vector<int>{2});
    EXPECT_EQ(sa::schema_version(*engine), 2);
    EXPECT_THROW(sa::Migrations().step(0, "zero", [](sa::Connection&) {}), sa::ArgumentError);
    EXPECT_THROW(sa::Migrations().step(1, "a", [](sa::Connection&) {}).step(1, "b", [](sa::Connection&) {}),
                 sa::ArgumentError);
}

TEST_F(Migration, DefaultsPrimaryKeysAndDroppedIndexesAndUniquesOverRows) {
    sa::MetaData a;
    a.table("pairs", sa::Column("k", sa::Integer(), sa::primary_key(), sa::autoincrement(false)),
            sa::Column("b", sa::String(10), sa::nullable(false)), sa::Column("code", sa::String(10), sa::unique()),
            sa::Column("v", sa::String(10), sa::server_default("old")), sa::Index{"ix_pairs_v", {"v"}});
    a.create_all(*engine);
    run_sql(*engine, {"INSERT INTO pairs (k, b, code) VALUES (1, 'x', 'c1')",
                      "INSERT INTO pairs (k, b, code, v) VALUES (1 + 1, 'y', 'c2', 'set')"});
    sa::MetaData b;
    b.table("pairs", sa::Column("k", sa::Integer(), sa::primary_key(), sa::autoincrement(false)),
            sa::Column("b", sa::String(10), sa::primary_key()), sa::Column("code", sa::String(10)),
            sa::Column("v", sa::String(10), sa::server_default("new")));
    auto plan = sa::plan_migration(*engine, b);
    EXPECT_EQ(describe(plan), (std::vector<std::string>{"change server default of pairs.v to 'new'",
                                                         "change primary key of pairs to (k, b)",
                                                         "drop index ix_pairs_v on pairs",
                                                         "drop unique constraint on pairs (code)"}))
        << plan.to_string();
    EXPECT_FALSE(plan.destructive());
    plan.apply(*engine);
    EXPECT_TRUE(sa::plan_migration(*engine, b).empty()) << sa::plan_migration(*engine, b).to_string();
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT v FROM pairs WHERE k = 1")).scalar<std::string>(), "old");  // values kept
    EXPECT_EQ(c.execute(sa::text("SELECT v FROM pairs WHERE k = 2")).scalar<std::string>(), "set");
    c.execute(sa::text("INSERT INTO pairs (k, b, code) VALUES (1, 'z', 'c1')"));  // (k, b) is the key now; code not unique
    EXPECT_EQ(c.execute(sa::text("SELECT v FROM pairs WHERE b = 'z'")).scalar<std::string>(), "new");
    EXPECT_THROW(c.execute(sa::text("INSERT INTO pairs (k, b) VALUES (1, 'z')")), sa::IntegrityError);
    c.rollback();
}

TEST_F(Migration, APlanAppliedOnAConnectionRunsInItsTransaction) {
    // On PostgreSQL the ALTERs join the Connection's transaction (the caller commits); a SQLite
    // table rebuild needs foreign keys off, which cannot change inside a transaction: refused.
    fill_v1(*engine);
    sa::MetaData m;
    v1_users(m, sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(50), sa::nullable(false)));
    auto plan = sa::plan_migration(*engine, m);
    auto conn = engine->connect();
    if (!testdb::postgres()) {
        EXPECT_THROW(plan.apply(conn, {.allow_data_loss = true}), sa::MigrationError);
        conn.close();
        EXPECT_EQ(column_names(*engine, "users"), (std::vector<std::string>{"id", "name", "fullname"}));
        return;
    }
    plan.apply(conn, {.allow_data_loss = true});
    conn.commit();
    EXPECT_EQ(column_names(*engine, "users"), (std::vector<std::string>{"id", "name"}));
    EXPECT_EQ(count(*engine, "users"), 3);
}
