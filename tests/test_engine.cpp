// URLs, connections, transactions, savepoints, errors, results, executemany.
#include "fixtures.hpp"

#include <filesystem>

TEST(Url, EveryForm) {
    EXPECT_TRUE(sa::make_url("sqlite://").is_memory());
    EXPECT_TRUE(sa::make_url("sqlite:///:memory:").is_memory());
    EXPECT_EQ(sa::make_url("sqlite:///relative.db").database, "relative.db");
    EXPECT_EQ(sa::make_url("sqlite:////abs/path.db").database, "/abs/path.db");
    EXPECT_EQ(sa::make_url("sqlite+pysqlite:///x.db").backend(), "sqlite");
    EXPECT_EQ(sa::make_url("sqlite:///x.db?mode=ro").query.at("mode"), "ro");
}

TEST(Url, BadUrlsAreArgumentErrors) {
    for (const char* bad : {"notaurl", "://x", "mysql://u@h/db", "postgres://u@h/db", "postgresql+psycopg2://u@h/db",
                            "postgresql://u@h:0/db", "postgresql://u@h:99999/db", "postgresql://u@h:5x/db",
                            "postgresql://u%zz@h/db", "sqlite://host/x.db", "sqlite:///x.db?bad", "sq lite:///x"})
        EXPECT_THROW(sa::create_engine(bad), sa::ArgumentError) << bad;
}

TEST(Url, PostgresqlForms) {
    auto u = sa::make_url("postgresql://scott:ti%40ger@db.example.com:5433/test?sslmode=require&connect_timeout=5");
    EXPECT_EQ(u.backend(), "postgresql");
    EXPECT_EQ(u.username, "scott");
    EXPECT_EQ(u.password.value_or(""), "ti@ger");
    EXPECT_EQ(u.host, "db.example.com");
    EXPECT_EQ(u.port.value_or(0), 5433);
    EXPECT_EQ(u.database, "test");
    EXPECT_EQ(u.query.at("sslmode"), "require");
    EXPECT_EQ(u.query.at("connect_timeout"), "5");
    // The password never shows when the URL is printed (messages, logs).
    EXPECT_EQ(u.render(), "postgresql://scott:***@db.example.com:5433/test?connect_timeout=5&sslmode=require");
    EXPECT_EQ(sa::make_url(u.render(false)).password.value_or(""), "ti@ger");
    auto sock = sa::make_url("postgresql+libpq:///test?host=/var/run/postgresql");
    EXPECT_EQ(sock.backend(), "postgresql");
    EXPECT_EQ(sock.host, "");
    EXPECT_EQ(sock.database, "test");
    EXPECT_EQ(sock.query.at("host"), "/var/run/postgresql");
    auto v6 = sa::make_url("postgresql://u@[::1]:6543/d");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port.value_or(0), 6543);
    EXPECT_EQ(sa::create_engine("postgresql://u@h/db")->dialect().name(), "postgresql");  // connects lazily
}

TEST(Url, UnreachableServerIsOperationalError) {
    // Port 1 on the loopback: nothing listens there, the connection is refused at once.
    auto e = sa::create_engine("postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2");
    try {
        e->connect();
        FAIL() << "connected to port 1";
    } catch (const sa::OperationalError& err) {
        EXPECT_EQ(err.sqlstate(), "08001");
        EXPECT_NE(std::string(err.what()).find("127.0.0.1:1"), std::string::npos) << err.what();
    }
}

class Engine : public MemoryDb {};

TEST_F(Engine, SelectOne) {
    auto conn = engine->connect();
    EXPECT_EQ(conn.execute(sa::text("SELECT 1")).scalar<std::int64_t>(), 1);
}

TEST_F(Engine, ApiTransactionSnippet) {
    auto conn = engine->connect();
    conn.execute(sa::text("CREATE TABLE t (x INTEGER)"));
    EXPECT_EQ(conn.execute(sa::text("SELECT 1")).scalar<std::int64_t>(), 1);
    {
        sa::Transaction tx = conn.begin();
        conn.execute(sa::text("INSERT INTO t (x) VALUES (:x)"), {{"x", 5}});
        tx.commit();
    }
    {
        sa::Transaction tx = conn.begin();
        conn.execute(sa::text("INSERT INTO t (x) VALUES (:x)"), {{"x", 6}});
    }  // RAII: rolled back
    EXPECT_EQ(conn.execute(sa::text("SELECT x FROM t")).scalars<std::int64_t>(), std::vector<std::int64_t>{5});
}

TEST_F(Engine, SavepointRollsBackOnlyItsPart) {
    auto conn = engine->connect();
    conn.execute(users.insert(), {{"name", "a"}});
    {
        auto nested = conn.begin_nested();
        conn.execute(users.insert(), {{"name", "b"}});
        nested.rollback();
    }
    {
        auto nested = conn.begin_nested();
        conn.execute(users.insert(), {{"name", "c"}});
        nested.commit();
    }
    conn.commit();
    auto names = conn.execute(sa::select(users.c["name"]).order_by(users.c["name"])).scalars<std::string>();
    EXPECT_EQ(names, (std::vector<std::string>{"a", "c"}));
}

TEST_F(Engine, CloseWithoutCommitRollsBack) {
    {
        auto conn = engine->connect();
        conn.execute(users.insert(), {{"name", "gone"}});
    }
    auto conn = engine->connect();
    EXPECT_EQ(conn.execute(sa::select(sa::func::count()).select_from(users)).scalar<std::int64_t>(), 0);
}

TEST_F(Engine, DuplicateKeyIsIntegrityErrorAndConnectionStaysUsable) {
    auto conn = engine->connect();
    conn.execute(users.insert(), {{"name", "ed"}});
    try {
        conn.execute(users.insert(), {{"name", "ed"}});
        FAIL() << "expected IntegrityError";
    } catch (const sa::IntegrityError& e) {
        EXPECT_EQ(e.params(), "('ed',)");
        if (testdb::postgres()) {
            EXPECT_EQ(e.sqlstate(), "23505");  // unique_violation
            EXPECT_EQ(e.statement(), "INSERT INTO users (name) VALUES ($1) RETURNING users.id");
            EXPECT_NE(std::string(e.what()).find("duplicate key value violates unique constraint \"users_name_key\""),
                      std::string::npos) << e.what();
        } else {
            EXPECT_EQ(e.extended_code(), 2067);  // SQLITE_CONSTRAINT_UNIQUE
            EXPECT_EQ(e.sqlstate(), "");
            EXPECT_EQ(e.statement(), "INSERT INTO users (name) VALUES (?)");
            EXPECT_NE(std::string(e.what()).find("UNIQUE constraint failed: users.name"), std::string::npos);
        }
    }
    if (testdb::postgres()) {
        // A failed statement aborts a PostgreSQL transaction: until ROLLBACK every statement
        // is refused (SQLSTATE 25P02); after it the connection is usable again.
        try {
            conn.execute(users.insert(), {{"name", "wendy"}});
            FAIL() << "expected the aborted transaction to refuse the statement";
        } catch (const sa::InternalError& e) {
            EXPECT_EQ(e.sqlstate(), "25P02");
        }
        conn.rollback();
        conn.execute(users.insert(), {{"name", "ed"}});
    }
    conn.execute(users.insert(), {{"name", "wendy"}});
    conn.commit();
    EXPECT_EQ(conn.execute(sa::select(sa::func::count()).select_from(users)).scalar<std::int64_t>(), 2);
    EXPECT_THROW(conn.execute(users.insert(), {{"fullname", "no name"}}), sa::IntegrityError);  // NOT NULL
}

TEST_F(Engine, ErrorKinds) {
    auto conn = engine->connect();
    EXPECT_THROW(conn.execute(sa::text("SELEC 1")), sa::ProgrammingError);
    if (testdb::postgres()) conn.rollback();  // the error aborted the transaction
    EXPECT_THROW(conn.execute(sa::text("SELECT * FROM nope")), sa::ProgrammingError);
    if (testdb::postgres()) conn.rollback();
    EXPECT_THROW(conn.execute(sa::text("SELECT :a")), sa::MissingParameterError);
    EXPECT_THROW(sa::create_engine("sqlite:////nonexistent/dir/x.db")->connect(), sa::OperationalError);
    try {
        conn.execute(sa::text("SELECT :a"));
    } catch (const sa::Error& e) {
        EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos);
    }
}

TEST_F(Engine, ApiStatementsRun) {
    auto conn = engine->connect();
    std::vector<sa::Params> rows = {{{"name", "a"}}, {{"name", "b"}}, {{"name", "e1"}}};
    auto r = conn.execute(users.insert(), rows);
    EXPECT_EQ(r.rowcount(), 3);
    auto stmt = sa::select(users.c["id"], users.c["name"])
                    .where(sa::and_(users.c["name"].like("e%"), users.c["id"] > 0))
                    .order_by(users.c["id"].desc()).limit(10).offset(0);
    std::vector<std::string> seen;
    for (const sa::Row& row : conn.execute(stmt)) seen.push_back(row.get<std::string>("name"));
    EXPECT_EQ(seen, std::vector<std::string>{"e1"});
    EXPECT_EQ(conn.execute(users.update().where(users.c["id"] == 1).values({{"fullname", "X"}})).rowcount(), 1);
    EXPECT_EQ(conn.execute(sa::select(users.c["fullname"]).where(users.c["id"] == 1)).scalar<std::string>(), "X");
    EXPECT_EQ(conn.execute(users.delete_().where(users.c["name"].in_({"a", "b"}))).rowcount(), 2);
    EXPECT_EQ(conn.execute(sa::select(sa::func::count(users.c["id"]))).scalar<std::int64_t>(), 1);
}

TEST_F(Engine, InsertedPrimaryKeyAndReturning) {
    auto conn = engine->connect();
    auto r = conn.execute(users.insert().values({{"name", "ed"}}));
    EXPECT_EQ(r.inserted_primary_key(), std::vector<sa::Value>{sa::Value(1)});
    auto r2 = conn.execute(users.insert().values({{"id", 10}, {"name", "x"}}));
    EXPECT_EQ(r2.inserted_primary_key(), std::vector<sa::Value>{sa::Value(10)});
    auto ret = conn.execute(users.insert().returning(users.c["id"], users.c["name"]), {{"name", "wendy"}}).one();
    // SQLite's next rowid follows the largest key; a PostgreSQL sequence ignores keys given
    // explicitly (SERIAL semantics) and hands out its next value.
    EXPECT_EQ(ret.get<std::int64_t>("id"), testdb::postgres() ? 2 : 11);
    EXPECT_EQ(ret.get<std::string>("name"), "wendy");
}

TEST_F(Engine, ResultShapes) {
    auto conn = engine->connect();
    conn.execute(users.insert(), std::vector<sa::Params>{{{"name", "a"}}, {{"name", "b"}}});
    auto q = sa::select(users.c["name"]).order_by(users.c["name"]);
    EXPECT_EQ(conn.execute(q).all().size(), 2u);
    EXPECT_EQ(conn.execute(q).first()->get<std::string>(0), "a");
    EXPECT_THROW(conn.execute(q).one(), sa::MultipleResultsFound);
    EXPECT_THROW(conn.execute(q.where(users.c["name"] == "zz")).one(), sa::NoResultFound);
    EXPECT_FALSE(conn.execute(q.where(users.c["name"] == "zz")).one_or_none().has_value());
    EXPECT_EQ(conn.execute(q.where(users.c["name"] == "zz")).scalar<std::optional<std::string>>(), std::nullopt);
    EXPECT_THROW(conn.execute(q.where(users.c["name"] == "zz")).scalar<std::string>(), sa::NoResultFound);
    auto r = conn.execute(sa::select(users.c["id"], users.c["name"].label("n")));
    EXPECT_EQ(r.keys(), (std::vector<std::string>{"id", "n"}));
    EXPECT_THROW((void)r.one()["nope"], sa::MultipleResultsFound);
}

TEST_F(Engine, EveryKindReadsBackWhetherTheRowIsNewOrReused) {
    // SQLite keeps each value's own kind, so one column can hold them all, in an order where
    // a reused row (iteration, fetch_into) meets every change of kind, text after text included.
    SQLITE_ONLY("one column holding values of every kind (SQLite's dynamic typing)");
    auto conn = engine->connect();
    conn.execute(sa::text("CREATE TABLE mixed (n INTEGER PRIMARY KEY, v)"));
    const std::vector<sa::Value> values{sa::Value("short"), sa::Value(std::string(40, 'L')), sa::Value(7),
                                        sa::Value(),        sa::Value(2.5),                  sa::Value(sa::Blob{0, 255}),
                                        sa::Value("again"), sa::Value(sa::Blob{}),           sa::Value("")};
    for (std::size_t i = 0; i < values.size(); ++i)
        conn.execute(sa::text("INSERT INTO mixed (n, v) VALUES (:n, :v)"),
                     {{"n", static_cast<std::int64_t>(i)}, {"v", values[i]}});
    auto q = sa::text("SELECT v FROM mixed ORDER BY n");
    auto expect_at = [&](std::size_t i, const sa::Value& got) {
        // An empty blob is stored as a zero-length blob and reads back as one.
        EXPECT_EQ(got, values[i]) << "row " << i << ": " << got.repr();
    };
    std::size_t i = 0;
    for (const auto& row : conn.execute(q)) expect_at(i++, row[0]);  // one row object, reused
    EXPECT_EQ(i, values.size());
    auto all = conn.execute(q).all();  // a new row each
    ASSERT_EQ(all.size(), values.size());
    for (i = 0; i < all.size(); ++i) expect_at(i, all[i][0]);
    auto r = conn.execute(q);
    std::vector<sa::Value> row;
    for (i = 0; r.fetch_into(row); ++i) expect_at(i, row.at(0));
    EXPECT_EQ(i, values.size());
}

TEST_F(Engine, RowsKeepTheirKeysAfterTheStatementIsGone) {
    auto conn = engine->connect();
    conn.execute(users.insert(), std::vector<sa::Params>{{{"name", "a"}}, {{"name", "b"}}});
    auto make = [&](int above) {
        return sa::select(users.c["id"], users.c["name"].label("n")).where(users.c["id"] > above).order_by(users.c["id"]);
    };
    EXPECT_EQ(conn.execute(make(-1)).all().size(), 2u);  // the shape is compiled (and cached) once
    std::optional<sa::Result> r;
    sa::Row first;
    {
        // A statement object of the same shape gets its own copy of the compiled form (with
        // the keys), kept in the statement's cache: it would go with the statement but for the
        // result holding it.
        auto q = make(0);
        r.emplace(conn.execute(q));
        first = *r->fetchone();
        auto again = conn.execute(q);  // the same statement run again while the first is open
        EXPECT_EQ(again.keys(), (std::vector<std::string>{"id", "n"}));
        EXPECT_EQ(again.all().size(), 2u);
    }
    EXPECT_EQ(r->keys(), (std::vector<std::string>{"id", "n"}));
    EXPECT_EQ(first["n"].as_text(), "a");
    auto second = r->fetchone();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ((*second)["n"].as_text(), "b");
    EXPECT_EQ((*second)["id"], sa::Value(2));
    EXPECT_FALSE(r->fetchone().has_value());
}

TEST_F(Engine, FetchViewsReadsRowsWithoutCopies) {
    auto conn = engine->connect();
    conn.execute(users.insert(), {{"name", "a"}, {"fullname", "A"}});
    conn.execute(users.insert(), {{"name", "b"}});
    // executemany takes its columns from the first set; a later set without one is an error.
    try {
        conn.execute(users.insert(), std::vector<sa::Params>{{{"name", "c"}, {"fullname", "C"}}, {{"name", "d"}}});
        FAIL() << "expected MissingParameterError";
    } catch (const sa::MissingParameterError& e) {
        EXPECT_NE(std::string(e.what()).find("'fullname', in parameter group 1"), std::string::npos) << e.what();
    }
    auto r = conn.execute(sa::select(users.c["id"], users.c["name"], users.c["fullname"]).order_by(users.c["id"]));
    std::vector<sa::ValueView> v;
    ASSERT_TRUE(r.fetch_views(v));
    EXPECT_EQ(v[0].i, 1);
    EXPECT_EQ(v[1].bytes, "a");
    EXPECT_EQ(v[2].kind, sa::Value::Kind::text);
    ASSERT_TRUE(r.fetch_views(v));
    EXPECT_EQ(v[1].bytes, "b");
    EXPECT_EQ(v[2].kind, sa::Value::Kind::null);
    EXPECT_FALSE(r.fetch_views(v));
    EXPECT_FALSE(r.fetch_views(v));
}

// executemany looks each slot's value up where the set before had it, then by name: sets with
// their names in another order, or with other names beside them, still bind each value to its
// column. The result counts every row and reports the last row's key.
TEST_F(Engine, ExecutemanyFindsEachSetsValuesWhateverTheirOrder) {
    auto conn = engine->connect();
    std::vector<sa::Params> rows{
        {{"name", "a"}, {"fullname", "A"}},
        {{"name", "b"}, {"fullname", "B"}},
        {{"fullname", "C"}, {"name", "c"}},                    // the other order
        {{"x", 1}, {"fullname", "D"}, {"name", "d"}},          // a name the statement does not use
        {{"name", "e"}, {"fullnam", "no"}, {"fullname", "E"}}, // a near miss where the value was
        {{"name", "f"}, {"fullname", "F"}},
    };
    auto r = conn.execute(users.insert(), rows);
    EXPECT_EQ(r.rowcount(), 6);
    auto all = conn.execute(sa::select(users.c["id"], users.c["name"], users.c["fullname"]).order_by(users.c["id"])).all();
    ASSERT_EQ(all.size(), 6u);
    for (std::size_t i = 0; i < all.size(); ++i) {
        const std::string name(1, static_cast<char>('a' + i));
        EXPECT_EQ(all[i]["name"].as_text(), name) << i;
        EXPECT_EQ(all[i]["fullname"].as_text(), std::string(1, static_cast<char>('A' + i))) << i;
    }
    if (!testdb::postgres()) {  // PostgreSQL's executemany sends no RETURNING: no key to report
        EXPECT_EQ(r.lastrowid(), all.back()["id"].as_int());
    }
}

TEST_F(Engine, CursorCountsRowsOfWritesOnly) {
    auto conn = engine->connect();
    const sa::Params shape{{"name", sa::Value()}};
    auto ins = conn.cursor(users.insert(), &shape);
    sa::Value name("ed");
    ins.execute({&name});
    EXPECT_EQ(ins.rowcount(), 1);
    const std::int64_t ed_id = ins.lastrowid();
    EXPECT_GT(ed_id, 0);
    auto sel = conn.cursor(sa::select(users.c["name"]).where(users.c["id"] == sa::bindparam("id")));
    sa::Value id(ed_id);
    sel.execute({&id});
    std::vector<sa::Value> row;
    ASSERT_TRUE(sel.fetch_into(row));
    EXPECT_EQ(row[0], sa::Value("ed"));
    // A SELECT changes no row: -1, as SQLAlchemy's rowcount for a SELECT (not the count of
    // the INSERT before it).
    EXPECT_EQ(sel.rowcount(), -1);
    EXPECT_EQ(conn.execute(sa::select(users.c["id"])).rowcount(), -1);
    if (!testdb::postgres()) {
        EXPECT_EQ(sel.lastrowid(), ed_id);  // SQLite's: the connection's last key
    }
    auto upd = conn.cursor(users.update().values({{"fullname", "ED"}}));
    upd.execute({&upd.compiled().binds[0].value});
    EXPECT_EQ(upd.rowcount(), 1);
}

// Cursor::execute_many: the rows of one span run in order as one batch; the count is of them
// all, the key the last one's; a span that is not whole rows is an error before anything runs.
TEST_F(Engine, CursorExecuteManyRunsEveryRowInOrder) {
    auto conn = engine->connect();
    const sa::Params shape{{"name", sa::Value()}, {"fullname", sa::Value()}};
    auto ins = conn.cursor(users.insert(), &shape);
    ASSERT_EQ(ins.compiled().binds.size(), 2u);
    std::vector<sa::Value> vals = {sa::Value("a"), sa::Value("A"), sa::Value("b"), sa::Value(),
                                   sa::Value("c"), sa::Value("C")};
    std::vector<const sa::Value*> all;
    for (const auto& v : vals) all.push_back(&v);
    EXPECT_EQ(ins.execute_many(all), 3);
    EXPECT_EQ(ins.rowcount(), 3);
    auto got = conn.execute(sa::select(users.c["id"], users.c["name"], users.c["fullname"]).order_by(users.c["id"])).all();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0]["name"].as_text(), "a");
    EXPECT_TRUE(got[1]["fullname"].is_null());
    EXPECT_EQ(got[2]["name"].as_text(), "c");
    if (!testdb::postgres()) {  // SQLite: the statement's last rowid
        EXPECT_EQ(ins.lastrowid(), got[2]["id"].as_int());
    }
    all.pop_back();  // five values for rows of two
    EXPECT_THROW(ins.execute_many(all), sa::ProgrammingError);
    EXPECT_EQ(conn.execute(sa::select(sa::func::count()).select_from(users)).scalar<std::int64_t>(), 3);
    // A failing row stops the batch: the rows before it ran, the ones after did not.
    std::vector<sa::Value> dup = {sa::Value("d"), sa::Value(), sa::Value("a"), sa::Value(), sa::Value("e"), sa::Value()};
    std::vector<const sa::Value*> dall;
    for (const auto& v : dup) dall.push_back(&v);
    EXPECT_THROW(ins.execute_many(dall), sa::IntegrityError);
    if (!testdb::postgres()) {  // PostgreSQL refuses every statement of a failed transaction
        EXPECT_EQ(conn.execute(sa::select(sa::func::count()).select_from(users)).scalar<std::int64_t>(), 4);
    }
}

TEST(SqliteCursor, IntegersBoundBeforeAreReplacedWhenAnotherValueCame) {
    // The SQLite statement keeps an integer bound by the previous execution instead of
    // binding it again; every other value, and a different integer, is bound anew.
    auto engine = sa::create_engine("sqlite://");
    sa::MetaData md;
    auto& t = md.table("t", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("x", sa::Integer()));
    md.create_all(*engine);
    auto conn = engine->connect();
    conn.execute(t.insert(), std::vector<sa::Params>{{{"id", 1}, {"x", 10}}, {{"id", 2}, {"x", 20}}});
    auto cur = conn.cursor(sa::select(t.c["x"]).where(t.c["id"] == sa::bindparam("id")).limit(1));
    auto run = [&](sa::Value key) -> std::optional<std::int64_t> {
        std::vector<const sa::Value*> values{&key};
        for (std::size_t i = 1; i < cur.compiled().binds.size(); ++i) values.push_back(&cur.compiled().binds[i].value);
        cur.execute(values);
        std::vector<sa::Value> row;
        if (!cur.fetch_into(row)) return std::nullopt;
        return row[0].as_int();
    };
    ASSERT_EQ(cur.compiled().binds.size(), 3u);  // the key, then LIMIT's 1 and OFFSET's 0
    EXPECT_EQ(run(1), 10);
    EXPECT_EQ(run(sa::Value()), std::nullopt);  // NULL matches nothing
    EXPECT_EQ(run(1), 10);
    EXPECT_EQ(run(2.5), std::nullopt);
    EXPECT_EQ(run(1), 10);
    EXPECT_EQ(run(2), 20);
    EXPECT_EQ(run(2), 20);
    EXPECT_EQ(run(sa::Value("x")), std::nullopt);
    EXPECT_EQ(run(2), 20);
    EXPECT_EQ(run(1), 10);
    // Inserting through one cursor: repeated and changing integers land as given.
    const sa::Params shape{{"id", sa::Value()}, {"x", sa::Value()}};
    auto ins = conn.cursor(t.insert(), &shape);
    for (std::int64_t id : {3, 4, 5, 6}) {
        sa::Value k(id), x(id == 5 ? sa::Value() : sa::Value(7));
        ins.execute({&k, &x});
    }
    auto rows = conn.execute(sa::select(t.c["id"], t.c["x"]).where(t.c["id"] >= 3).order_by(t.c["id"])).all();
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0].get<std::optional<std::int64_t>>(1), 7);
    EXPECT_EQ(rows[1].get<std::optional<std::int64_t>>(1), 7);
    EXPECT_EQ(rows[2].get<std::optional<std::int64_t>>(1), std::nullopt);
    EXPECT_EQ(rows[3].get<std::optional<std::int64_t>>(1), 7);
}

TEST_F(Engine, NestedResultsOnTheSameStatement) {
    auto conn = engine->connect();
    conn.execute(users.insert(), std::vector<sa::Params>{{{"name", "a"}}, {{"name", "b"}}});
    auto q = sa::select(users.c["name"]).order_by(users.c["name"]);
    std::vector<std::string> pairs;
    for (const auto& outer : conn.execute(q))
        for (const auto& inner : conn.execute(q))  // same SQL while the first still streams
            pairs.push_back(outer.get<std::string>(0) + inner.get<std::string>(0));
    EXPECT_EQ(pairs, (std::vector<std::string>{"aa", "ab", "ba", "bb"}));
}

TEST_F(Engine, InjectionAttemptsAreInert) {
    auto conn = engine->connect();
    std::string evil = "x'); DROP TABLE users; --";
    conn.execute(users.insert(), {{"name", evil}});
    EXPECT_EQ(conn.execute(sa::select(users.c["name"]).where(users.c["name"] == evil)).scalar<std::string>(), evil);
    // An evil identifier is quoted, so it names a (missing) table instead of running SQL.
    sa::MetaData m;
    sa::Table& t = m.table("t\"; DROP TABLE users; --", sa::Column("id", sa::Integer(), sa::primary_key()));
    m.create_all(*engine);
    conn.commit();
    conn.execute(t.insert(), {{"id", 1}});
    EXPECT_EQ(conn.execute(sa::select(sa::func::count()).select_from(users)).scalar<std::int64_t>(), 1);
    EXPECT_EQ(conn.execute(sa::select(t.c["id"])).scalar<std::int64_t>(), 1);
}

TEST_F(Engine, ColumnDefaultsAreApplied) {
    sa::MetaData m;
    int n = 0;
    sa::Table& t = m.table("d", sa::Column("id", sa::Integer(), sa::primary_key()),
                           sa::Column("v", sa::Integer(), sa::default_(7)),
                           sa::Column("c", sa::Integer(), sa::default_([&n] { return ++n; })),
                           sa::Column("s", sa::String(), sa::server_default("srv")));
    m.create_all(*engine);
    auto conn = engine->connect();
    conn.execute(t.insert(), std::vector<sa::Params>{{{"id", 1}}, {{"id", 2}}, {{"id", 3}, {"v", 1}}});
    auto rows = conn.execute(sa::select(t).order_by(t.c["id"])).all();
    EXPECT_EQ(rows[0].get<std::int64_t>("v"), 7);
    EXPECT_EQ(rows[2].get<std::int64_t>("v"), 1);
    EXPECT_EQ(rows[0].get<std::int64_t>("c"), 1);
    EXPECT_EQ(rows[1].get<std::int64_t>("c"), 2);  // the callable runs per row
    EXPECT_EQ(rows[0].get<std::string>("s"), "srv");
}

TEST_F(Engine, MemoryDatabaseIsSharedFileDatabasePools) {
    auto c1 = engine->connect();
    c1.execute(users.insert(), {{"name", "x"}});
    c1.commit();
    auto c2 = engine->connect();
    EXPECT_EQ(c2.execute(sa::select(sa::func::count()).select_from(users)).scalar<std::int64_t>(), 1);

    auto path = std::filesystem::temp_directory_path() / "athanor_engine_test.db";
    std::filesystem::remove(path);
    auto fe = sa::create_engine("sqlite:///" + path.string(), {.wal = true});
    metadata.create_all(*fe);
    {
        auto a = fe->connect();
        a.execute(users.insert(), {{"name", "f"}});
        a.commit();
    }
    auto b = fe->connect();
    EXPECT_EQ(b.execute(sa::text("PRAGMA journal_mode")).scalar<std::string>(), "wal");
    EXPECT_EQ(b.execute(sa::select(users.c["name"])).scalar<std::string>(), "f");
    b.close();
    fe.reset();
    std::filesystem::remove(path);
}

TEST(EngineFile, BusyDatabaseIsOperationalErrorAfterTheTimeout) {
    auto path = std::filesystem::temp_directory_path() / "athanor_busy_test.db";
    std::filesystem::remove(path);
    UsersSchema s;
    auto e1 = sa::create_engine("sqlite:///" + path.string());
    auto e2 = sa::create_engine("sqlite:///" + path.string(), {.busy_timeout = 0.05});
    s.metadata.create_all(*e1);
    auto writer = e1->connect();
    writer.execute(s.users.insert(), {{"name", "holds the write lock"}});
    auto other = e2->connect();
    try {
        other.execute(s.users.insert(), {{"name", "blocked"}});
        FAIL() << "expected OperationalError";
    } catch (const sa::OperationalError& err) {
        EXPECT_EQ(err.code(), 5);  // SQLITE_BUSY
        EXPECT_NE(std::string(err.what()).find("database is locked"), std::string::npos);
    }
    other.rollback();
    writer.commit();
    other.execute(s.users.insert(), {{"name", "now it can"}});  // usable after the error
    other.commit();
    EXPECT_EQ(other.execute(sa::select(sa::func::count()).select_from(s.users)).scalar<std::int64_t>(), 2);
    writer.close();
    other.close();
    e1.reset();
    e2.reset();
    std::filesystem::remove(path);
}

TEST_F(Engine, EngineBeginCommits) {
    {
        auto conn = engine->begin();
        conn.execute(users.insert(), {{"name", "b"}});
        conn.commit();
    }
    auto conn = engine->connect();
    EXPECT_EQ(conn.execute(sa::select(users.c["name"])).scalar<std::string>(), "b");
}

TEST_F(Engine, ClosedConnectionRefusesWork) {
    auto conn = engine->connect();
    conn.close();
    EXPECT_THROW(conn.execute(sa::text("SELECT 1")), sa::InvalidRequestError);
}
