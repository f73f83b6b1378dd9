// ../shared/API.md, section by section, as written (comments turned into assertions).
// API.md's User{.name = "wendy"} leaves members to their defaults, which GCC 12 flags under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <athanor/athanor.hpp>

#include <cassert>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

namespace sa = athanor;

namespace {
struct User { std::int64_t id = 0; std::string name, fullname, password; };
struct Customer { std::int64_t id = 0; std::string name, description; };
}  // namespace

TEST(ApiContract, AllSections) {
    // ---- 1. Connecting
    auto engine = sa::create_engine("sqlite:///:memory:", {.echo = true});   // std::shared_ptr<sa::Engine>
    static_assert(std::is_same_v<decltype(engine), std::shared_ptr<sa::Engine>>);
    EXPECT_EQ(spdlog::get("athanor.engine"), sa::engine_logger());
    sa::Connection conn = engine->connect();
    EXPECT_EQ(conn.execute(sa::text("SELECT 1")).scalar<std::int64_t>(), 1);
    conn.execute(sa::text("CREATE TABLE t (x INTEGER)"));
    {
        sa::Transaction tx = conn.begin();          // RAII: rolls back unless committed
        conn.execute(sa::text("INSERT INTO t (x) VALUES (:x)"), {{"x", 5}});
        tx.commit();
    }
    {
        auto nested = conn.begin_nested();          // SAVEPOINT; nested.rollback() undoes only it
        conn.execute(sa::text("INSERT INTO t (x) VALUES (:x)"), {{"x", 6}});
        nested.rollback();
    }
    EXPECT_EQ(conn.execute(sa::text("SELECT count(*) FROM t")).scalar<std::int64_t>(), 1);
    conn.commit();

    // ---- 2. Schema at runtime
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
    metadata.create_all(*engine);                   // FK order, IF NOT EXISTS semantics (checkfirst)
    metadata.drop_all(*engine);                     // reverse FK order
    metadata.create_all(*engine);
    (void)users.c["name"];                          // a column expression, as users.c.name
    EXPECT_EQ(metadata.tables().size(), 2u);        // 2: name -> Table; sorted_tables() in FK order
    EXPECT_EQ(metadata.sorted_tables().front(), &users);
    nlohmann::json j = metadata.to_json();          // schemas travel as JSON ...
    sa::MetaData m2 = sa::MetaData::from_json(j);   // ... and come back identical
    EXPECT_EQ(m2.to_json(), j);
    sa::MetaData m3; m3.reflect(*engine);           // tables read back from a live database
    EXPECT_EQ(m3.tables().size(), 3u);  // users, addresses and section 1's t

    // ---- 3. SQL expression language
    auto stmt = sa::select(users.c["id"], users.c["name"])
                    .where(sa::and_(users.c["name"].like("e%"), users.c["id"] > 0))
                    .order_by(users.c["id"].desc()).limit(10).offset(0);
    std::vector<sa::Params> rows = {{{"name", "a"}}, {{"name", "b"}}};
    conn.execute(users.insert(), rows);             // executemany: one prepared stmt
    conn.execute(users.insert(), {{"name", "ed"}});
    std::vector<std::string> names;
    for (const sa::Row& row : conn.execute(stmt)) names.push_back(row.get<std::string>("name"));
    EXPECT_EQ(names, std::vector<std::string>{"ed"});
    conn.execute(users.update().where(users.c["id"] == 1).values({{"fullname", "X"}}));
    conn.execute(users.delete_().where(users.c["name"].in_({"a", "b"})));
    (void)sa::select(sa::func::count(users.c["id"])).group_by(users.c["name"]);
    EXPECT_EQ(sa::select(users, addresses).join_from(users, addresses).to_string(engine->dialect()).find(
                  "FROM users JOIN addresses ON users.id = addresses.user_id") != std::string::npos,
              true);                                // ON inferred from the FK
    conn.commit();
    conn.execute(users.delete_());
    conn.commit();

    // ---- 4. Classical mapping with an explicit registry
    sa::Registry registry;                              // the explicit mapper registry
    registry.map_imperatively<User>(users)              // == mapper(User, users)
        .column("id", &User::id)                        // member pointer -> accessor lambdas
        .column("name", &User::name)
        .column("fullname", [](const User& u) { return u.fullname; },          // or your own
                            [](User& u, std::string v) { u.fullname = std::move(v); })
        .column("password", &User::password);
    EXPECT_EQ(&registry.mapper_of<User>().table(), &users);
    EXPECT_THROW(registry.mapper_of<Customer>(), sa::UnmappedClassError);

    // ---- 5. Declarative, built on the registry
    sa::DeclarativeBase Base;                           // == declarative_base(): .metadata + .registry
    Base.declare<Customer>("customer",                  // builds the Table and the mapper at once
        sa::mapped_column("id", &Customer::id, sa::primary_key()),       // type from the member
        sa::mapped_column("name", &Customer::name, sa::String(255)),
        sa::mapped_column("description", &Customer::description, sa::String(255)));
    Base.metadata.create_all(*engine);
    auto crit = sa::attr(&Customer::name) == "ed";      // a column expression from the member
    EXPECT_EQ(sa::select(sa::attr(&Customer::id)).where(crit).to_string(engine->dialect()),
              "SELECT customer.id \nFROM customer \nWHERE customer.name = ?");

    // ---- 6. Session
    sa::sessionmaker Session;                           // unbound factory
    Session.configure({.bind = engine});                // once the engine is available
    sa::Session session = Session();
    sa::Session direct(engine);                         // == Session(bind=engine)

    auto ed = std::make_shared<User>(User{.name = "ed", .fullname = "Ed Jones", .password = "edspassword"});
    session.add(ed);                                    // pending; nothing sent yet
    auto same = session.query<User>().filter_by({{"name", "ed"}}).first();  // autoflush: INSERT first
    assert(same == ed);                                 // the identity map: one object per row
    EXPECT_EQ(same, ed);
    assert(ed->id != 0);                                // the generated key was fetched back
    EXPECT_NE(ed->id, 0);
    ed->password = "f8s7ccs";
    assert(session.dirty().contains(ed));               // dirty tracking, changed columns only
    EXPECT_TRUE(session.dirty().contains(ed));
    session.add_all({std::make_shared<User>(User{.name = "wendy"}), std::make_shared<User>(User{.name = "mary"})});
    session.commit();                                   // flush in dependency order, then COMMIT
    EXPECT_EQ(session.get<User>(ed->id), ed);           // identity map: the same object (commit expired
                                                        // it: one SELECT refreshes it, as in SQLAlchemy)
    auto two = session.query<User>().filter(users.c["name"].in_({"ed", "wendy"}))
        .order_by(users.c["id"]).all();                 // std::vector<std::shared_ptr<User>>
    static_assert(std::is_same_v<decltype(two), std::vector<std::shared_ptr<User>>>);
    EXPECT_EQ(two.size(), 2u);
    EXPECT_EQ(session.query<User>().filter_by({{"name", "mary"}}).one()->name, "mary");  // NoResultFound / MultipleResultsFound
    EXPECT_EQ(session.query<User>().count(), 3);        // 3
    session.delete_(ed);  session.flush();              // DELETE
    session.rollback();                                 // reverts to the last commit; no data lost
    EXPECT_EQ(session.query<User>().count(), 3);

    sa::Session tuned(engine, {.autoflush = true, .expire_on_commit = false});   // SessionOptions
    EXPECT_TRUE(session.state_of(ed) == sa::ObjectState::persistent);   // transient, pending, persistent, deleted, detached
    { auto guard = session.no_autoflush(); /* queries here do not flush */ }
    { auto sp = session.begin_nested(); /* SAVEPOINT */ sp.rollback(); /* or sp.commit() */ }
    auto detached_copy = std::make_shared<User>(User{.id = ed->id, .name = "ed", .fullname = "Copy", .password = ""});
    std::shared_ptr<User> attached = session.merge(detached_copy);   // the persistent instance
    EXPECT_EQ(attached, ed);
    session.refresh(ed);                                // reloads from the database now
    EXPECT_EQ(ed->fullname, "Ed Jones");

    // ---- 7. Bulk operations
    std::vector<sa::Params> crows = {{{"name", "c1"}, {"description", "d"}}, {{"name", "c2"}, {"description", "d"}}};
    session.bulk_insert_mappings<Customer>(crows);        // rows: std::vector<sa::Params>
    std::vector<sa::Params> urows = {{{"id", 1}, {"description", "updated"}}};
    session.bulk_update_mappings<Customer>(urows);        // each mapping carries the primary key
    std::vector<std::shared_ptr<Customer>> objects = {std::make_shared<Customer>(Customer{0, "c3", "d"})};
    session.bulk_save_objects(objects);
    session.commit();
    EXPECT_EQ(session.connection().execute(sa::select(sa::func::count()).select_from(Base.metadata.get_table("customer")))
                  .scalar<std::int64_t>(), 3);
    EXPECT_EQ(objects.front()->id, 3);
}

// ---- 9. PostgreSQL: the snippet on the throwaway server when the suite runs there (pg.*), and
// on SQLite otherwise (the URL forms parse; run_transaction is the same call).
TEST(ApiContract, Section9PostgreSQL) {
    auto pg_lazy = sa::create_engine("postgresql://scott:tiger@127.0.0.1:5432/test", {.echo = true});
    EXPECT_EQ(pg_lazy->dialect().name(), "postgresql");  // no connection until one is needed
    EXPECT_EQ(sa::make_url("postgresql+libpq://u@h/db").backend(), "postgresql");
    EXPECT_EQ(sa::make_url("postgresql:///test?host=/var/run/postgresql").query.at("host"), "/var/run/postgresql");

    std::string url = "sqlite://";
    if (const char* f = std::getenv("ATHANOR_TEST_PG")) {
        std::ifstream in(f);
        std::getline(in, url);
    }
    auto engine = sa::create_engine(url);
    sa::DeclarativeBase Base;
    Base.declare<User>("api9_users", sa::mapped_column("id", &User::id, sa::primary_key()),
                       sa::mapped_column("name", &User::name, sa::String(30), sa::unique()),
                       sa::mapped_column("fullname", &User::fullname, sa::String(30)),
                       sa::mapped_column("password", &User::password, sa::String(30)));
    Base.metadata.drop_all(*engine);
    Base.metadata.create_all(*engine);
    sa::sessionmaker Session({.bind = engine});
    sa::run_transaction(Session, [&](sa::Session& s) { s.add(std::make_shared<User>(User{.name = "ed"})); });
    auto n = sa::run_transaction(Session, [&](sa::Session& s) { return s.query<User>().count(); });
    EXPECT_EQ(n, 1);
    try {
        sa::run_transaction(Session, [&](sa::Session& s) { s.add(std::make_shared<User>(User{.name = "ed"})); });
        FAIL() << "duplicate accepted";
    } catch (const sa::IntegrityError& e) {
        // A server error keeps its SQLSTATE ("23505"); SQLite's keeps its extended code.
        if (engine->dialect().name() == "postgresql") EXPECT_EQ(e.sqlstate(), "23505");
        else EXPECT_EQ(e.extended_code(), 2067);
    }
    Base.metadata.drop_all(*engine);
}

// ---- 10. Schema evolution, as written, on a database holding rows (v1 -> v2 of a class).
namespace {
struct Profile { std::int64_t id = 0; std::string name; std::optional<std::string> nickname; };
}  // namespace

TEST(ApiContract, Section10SchemaEvolution) {
    auto engine = sa::create_engine("sqlite://");
    {
        sa::DeclarativeBase V1;  // the application's version 1, with a row
        V1.declare<Profile>("api10_users", sa::mapped_column("id", &Profile::id, sa::primary_key()),
                            sa::mapped_column("name", &Profile::name, sa::String(30)));
        V1.metadata.create_all(*engine);
        sa::Session s(engine);
        s.add(std::make_shared<Profile>(Profile{.name = "ed"}));
        s.commit();
    }
    sa::DeclarativeBase Base;  // version 2: a new column
    Base.declare<Profile>("api10_users", sa::mapped_column("id", &Profile::id, sa::primary_key()),
                          sa::mapped_column("name", &Profile::name, sa::String(30)),
                          sa::mapped_column("nickname", &Profile::nickname, sa::String(30)));

    sa::MigrationPlan plan = sa::plan_migration(*engine, Base.metadata);  // live database vs metadata
    std::vector<std::string> said;
    for (const sa::MigrationOp& op : plan.operations()) said.push_back(op.describe());
    EXPECT_EQ(said, std::vector<std::string>{"add column api10_users.nickname"});
    EXPECT_FALSE(plan.destructive());
    EXPECT_EQ(plan.sql(), std::vector<std::string>{"ALTER TABLE api10_users ADD COLUMN nickname VARCHAR(30)"});
    plan.apply(*engine);                                                  // one transaction
    {
        sa::Session s(engine);
        auto ed = s.query<Profile>().filter_by({{"name", "ed"}}).one();  // the row is still there
        EXPECT_EQ(ed->nickname, std::nullopt);
        ed->nickname = "eddie";
        s.commit();
    }
    // A plan that would lose data throws and changes nothing unless explicitly allowed.
    sa::MetaData v3;  // version 3 drops the column again (a class maps in one registry at a time)
    v3.table("api10_users", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String(30)));
    sa::MigrationPlan drop = sa::plan_migration(*engine, v3);
    EXPECT_TRUE(drop.destructive());
    EXPECT_THROW(drop.apply(*engine), sa::MigrationError);
    EXPECT_TRUE(sa::plan_migration(*engine, Base.metadata).empty());  // nothing changed
    // sa::upgrade: plan + apply of what is safe, and the schema version recorded in the database.
    auto r = sa::upgrade(*engine, Base.metadata);
    EXPECT_TRUE(r.applied.empty());
    EXPECT_EQ(sa::schema_version(*engine), 0);
    auto conn = engine->connect();
    EXPECT_EQ(conn.execute(sa::text("SELECT description FROM athanor_schema_version WHERE version = 0")).scalar<std::string>(),
              "schema " + sa::schema_fingerprint(Base.metadata));
    conn.close();
    drop.apply(*engine, {.allow_data_loss = true});  // ... explicitly allowed
    EXPECT_TRUE(sa::plan_migration(*engine, v3).empty());
}
