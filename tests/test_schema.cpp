// DDL text, dependency order, JSON round trip, reflection.
#include "fixtures.hpp"

#include <nlohmann/json.hpp>

class Schema : public ::testing::Test, public UsersSchema {};

TEST_F(Schema, CreateTableMatchesSqlAlchemy) {
    EXPECT_EQ(sa::create_table_sql(users, sa::sqlite_dialect()),
              "\nCREATE TABLE users (\n\tid INTEGER NOT NULL, \n\tname VARCHAR(50) NOT NULL, \n\tfullname "
              "VARCHAR(50), \n\tpassword VARCHAR(12), \n\tPRIMARY KEY (id), \n\tUNIQUE (name)\n)\n\n");
    EXPECT_EQ(sa::create_table_sql(addresses, sa::sqlite_dialect()),
              "\nCREATE TABLE addresses (\n\tid INTEGER NOT NULL, \n\temail VARCHAR(100) NOT NULL, "
              "\n\tuser_id INTEGER, \n\tPRIMARY KEY (id), \n\tFOREIGN KEY(user_id) REFERENCES users (id) ON "
              "DELETE CASCADE\n)\n\n");
    EXPECT_EQ(sa::create_index_sql(addresses, sa::sqlite_dialect()),
              std::vector<std::string>{"CREATE INDEX ix_addresses_email ON addresses (email)"});
}

TEST_F(Schema, EveryTypeAndOption) {
    sa::MetaData m;
    sa::Table& t = m.table("allt",
        sa::Column("a", sa::Integer(), sa::primary_key()), sa::Column("b", sa::BigInteger(), sa::primary_key()),
        sa::Column("f", sa::Float(), sa::default_(1.5)), sa::Column("n", sa::Numeric(10, 2)),
        sa::Column("t", sa::Text(), sa::server_default("x")), sa::Column("bo", sa::Boolean()),
        sa::Column("d", sa::Date()), sa::Column("dt", sa::DateTime()), sa::Column("lb", sa::LargeBinary()),
        sa::Column("j", sa::JSON()), sa::Column("s", sa::String(), sa::unique()),
        sa::UniqueConstraint{{"f", "n"}}, sa::Index{"ix_allt_fn", {"f", "n"}, true});
    EXPECT_EQ(sa::create_table_sql(t, sa::sqlite_dialect()),
              "\nCREATE TABLE allt (\n\ta INTEGER NOT NULL, \n\tb BIGINT NOT NULL, \n\tf FLOAT, \n\tn "
              "NUMERIC(10, 2), \n\tt TEXT DEFAULT 'x', \n\tbo BOOLEAN, \n\td DATE, \n\tdt DATETIME, \n\tlb "
              "BLOB, \n\tj JSON, \n\ts VARCHAR, \n\tPRIMARY KEY (a, b), \n\tUNIQUE (f, n), \n\tUNIQUE "
              "(s)\n)\n\n");
    EXPECT_EQ(sa::create_index_sql(t, sa::sqlite_dialect()),
              std::vector<std::string>{"CREATE UNIQUE INDEX ix_allt_fn ON allt (f, n)"});
    EXPECT_EQ(t.primary_key().size(), 2u);
    EXPECT_EQ(t.autoincrement_column(), nullptr);  // composite keys do not autoincrement
    EXPECT_EQ(users.autoincrement_column(), &users.column("id"));
}

TEST_F(Schema, NamedConstraintsAndCompositeForeignKey) {
    sa::MetaData m;
    m.table("p", sa::Column("a", sa::Integer()), sa::Column("b", sa::Integer()),
            sa::PrimaryKeyConstraint{{"b", "a"}, "pk_p"});
    sa::Table& c = m.table("c", sa::Column("id", sa::Integer(), sa::primary_key()),
                           sa::Column("pa", sa::Integer()), sa::Column("pb", sa::Integer()),
                           sa::ForeignKeyConstraint{{"pa", "pb"}, {"p.a", "p.b"}, {.ondelete = "SET NULL"}},
                           sa::UniqueConstraint{{"pa", "pb"}, "uq_c"});
    EXPECT_EQ(sa::create_table_sql(m.get_table("p"), sa::sqlite_dialect()),
              "\nCREATE TABLE p (\n\ta INTEGER NOT NULL, \n\tb INTEGER NOT NULL, \n\tCONSTRAINT pk_p PRIMARY "
              "KEY (b, a)\n)\n\n");
    EXPECT_EQ(sa::create_table_sql(c, sa::sqlite_dialect()),
              "\nCREATE TABLE c (\n\tid INTEGER NOT NULL, \n\tpa INTEGER, \n\tpb INTEGER, \n\tPRIMARY KEY "
              "(id), \n\tCONSTRAINT uq_c UNIQUE (pa, pb), \n\tFOREIGN KEY(pa, pb) REFERENCES p (a, b) ON "
              "DELETE SET NULL\n)\n\n");
}

TEST_F(Schema, BadDefinitionsAreArgumentErrors) {
    sa::MetaData m;
    EXPECT_THROW(m.table("t", sa::Column("a", sa::Integer()), sa::Column("a", sa::Integer())), sa::ArgumentError);
    m.table("ok", sa::Column("a", sa::Integer()));
    EXPECT_THROW(m.table("ok", sa::Column("a", sa::Integer())), sa::ArgumentError);
    EXPECT_THROW(sa::ForeignKey("nodot"), sa::ArgumentError);
    EXPECT_THROW(m.table("u", sa::Column("a", sa::Integer()), sa::UniqueConstraint{{"zz"}}), sa::ArgumentError);
    EXPECT_FALSE(m.contains("u"));  // nothing half-built is left behind
    EXPECT_THROW((void)m.get_table("missing"), sa::NoSuchTableError);
}

TEST_F(Schema, SortedTablesFollowForeignKeys) {
    sa::MetaData m;
    m.table("c", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("b_id", sa::Integer(), sa::ForeignKey("b.id")));
    m.table("b", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("a_id", sa::Integer(), sa::ForeignKey("a.id")));
    m.table("a", sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("parent", sa::Integer(), sa::ForeignKey("a.id")));  // self reference is fine
    std::vector<std::string> names;
    for (auto* t : m.sorted_tables()) names.push_back(t->name());
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(Schema, CycleIsReportedWithTableNames) {
    sa::MetaData m;
    m.table("x", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("y_id", sa::Integer(), sa::ForeignKey("y.id")));
    m.table("y", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("x_id", sa::Integer(), sa::ForeignKey("x.id")));
    m.table("z", sa::Column("id", sa::Integer(), sa::primary_key()));
    try {
        m.sorted_tables();
        FAIL() << "expected CircularDependencyError";
    } catch (const sa::CircularDependencyError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("x, y"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("z"), std::string::npos) << msg;
    }
    auto engine = testdb::engine();
    EXPECT_THROW(m.create_all(*engine), sa::CircularDependencyError);
}

TEST_F(Schema, UseAlterBreaksACycleAndSurvivesJson) {
    sa::MetaData m;
    m.table("x", sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("y_id", sa::Integer(), sa::ForeignKey("y.id", {.name = "fk_x_y", .use_alter = true})));
    m.table("y", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("x_id", sa::Integer(), sa::ForeignKey("x.id")));
    std::vector<std::string> names;
    for (auto* t : m.sorted_tables()) names.push_back(t->name());
    EXPECT_EQ(names, (std::vector<std::string>{"x", "y"}));  // x's reference to y does not order
    auto engine = testdb::engine();
    // SQLite accepts the forward reference inside CREATE TABLE; PostgreSQL gets it by ALTER
    // TABLE once both tables exist, and drop_all drops it first.
    SqlLog log;
    auto echoing = testdb::postgres() ? sa::create_engine(testdb::pg_url(), {.echo = true}) : engine;
    m.create_all(*echoing);
    sa::MetaData r;
    r.reflect(*engine);
    ASSERT_EQ(r.get_table("x").column("y_id").foreign_keys().size(), 1u);
    EXPECT_EQ(r.get_table("x").column("y_id").foreign_keys().front().target(), "y.id");
    if (testdb::postgres()) {
        EXPECT_EQ(log.count("ALTER TABLE x ADD CONSTRAINT fk_x_y FOREIGN KEY(y_id) REFERENCES y (id)"), 1u) << log.text();
        m.drop_all(*echoing);
        EXPECT_EQ(log.count("ALTER TABLE x DROP CONSTRAINT fk_x_y"), 1u) << log.text();
    }
    nlohmann::json j = m.to_json();
    EXPECT_NE(j.dump().find("\"use_alter\":true"), std::string::npos);
    sa::MetaData back = sa::MetaData::from_json(j);
    EXPECT_TRUE(back.find_table("x")->column("y_id").foreign_keys().front().options().use_alter);
    EXPECT_EQ(back.to_json(), j);
}

TEST_F(Schema, CreateAllAndDropAllAgainstDatabase) {
    auto engine = testdb::engine();
    metadata.create_all(*engine);
    metadata.create_all(*engine);  // checkfirst: the second call creates nothing
    auto table_names = [&] {
        std::vector<std::string> names;
        engine->run_schema_work([&](sa::SchemaConnection& c) { names = c.dialect().get_table_names(c); });
        return names;
    };
    EXPECT_EQ(table_names(), (std::vector<std::string>{"addresses", "users"}));
    metadata.drop_all(*engine);
    EXPECT_TRUE(table_names().empty());
}

TEST_F(Schema, JsonRoundTripIsExact) {
    sa::MetaData m;
    m.table("p", sa::Column("a", sa::Integer()), sa::Column("b", sa::String(20)),
            sa::PrimaryKeyConstraint{{"b", "a"}, "pk_p"});
    m.table("allt", sa::Column("id", sa::Integer(), sa::primary_key(), sa::autoincrement(false)),
            sa::Column("f", sa::Float(), sa::default_(1.5)), sa::Column("n", sa::Numeric(10, 2), sa::nullable(false)),
            sa::Column("t", sa::Text(), sa::server_default("it's")), sa::Column("ts", sa::DateTime(), sa::server_default_sql("CURRENT_TIMESTAMP")),
            sa::Column("lb", sa::LargeBinary(), sa::default_(sa::Blob{0, 1, 255})), sa::Column("j", sa::JSON()),
            sa::Column("s", sa::String(5), sa::unique(), sa::index()), sa::Column("bo", sa::Boolean(), sa::default_(true)),
            sa::Column("pa", sa::Integer()), sa::Column("pb", sa::String(20)),
            sa::Column("ref", sa::Integer(), sa::ForeignKey("p.a", {.ondelete = "CASCADE", .onupdate = "SET NULL"})),
            sa::UniqueConstraint{{"f", "n"}, "uq_fn"}, sa::Index{"ix_x", {"n", "f"}, true},
            sa::ForeignKeyConstraint{{"pa", "pb"}, {"p.a", "p.b"}, {}});
    nlohmann::json j = m.to_json();
    sa::MetaData m2 = sa::MetaData::from_json(j);
    EXPECT_EQ(m2.to_json(), j);
    for (const auto& [name, t] : m.tables()) {
        const sa::Table& t2 = m2.get_table(name);
        EXPECT_EQ(sa::create_table_sql(*t, sa::sqlite_dialect()), sa::create_table_sql(t2, sa::sqlite_dialect()));
        EXPECT_EQ(sa::create_index_sql(*t, sa::sqlite_dialect()), sa::create_index_sql(t2, sa::sqlite_dialect()));
        ASSERT_EQ(t->columns().size(), t2.columns().size());
        for (std::size_t i = 0; i < t->columns().size(); ++i)
            EXPECT_TRUE(t->columns()[i]->same_definition(*t2.columns()[i])) << name << "." << t->columns()[i]->name();
    }
    // The round trip also survives text.
    EXPECT_EQ(sa::MetaData::from_json(nlohmann::json::parse(j.dump())).to_json(), j);
}

TEST_F(Schema, CallableDefaultCannotBeSerialized) {
    sa::MetaData m;
    m.table("t", sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("v", sa::Integer(), sa::default_([] { return 42; })));
    EXPECT_THROW(m.to_json(), sa::ArgumentError);
    EXPECT_EQ(m.get_table("t").column("v").default_value(), sa::Value(42));
}

static std::string from_json_error(const std::string& doc) {
    try {
        sa::MetaData::from_json(nlohmann::json::parse(doc));
    } catch (const sa::ArgumentError& e) {
        return e.what();
    }
    return "no error";
}

TEST_F(Schema, MalformedJsonNamesTheField) {
    EXPECT_NE(from_json_error("[]").find("$"), std::string::npos);
    EXPECT_NE(from_json_error("{}").find("$.tables: missing"), std::string::npos);
    EXPECT_NE(from_json_error(R"({"tables": [{"columns": []}]})").find("tables[0].name: missing"), std::string::npos);
    EXPECT_NE(from_json_error(R"({"tables": [{"name": "t", "columns": [{"name": "a", "type": "Strng"}]}]})")
                  .find("tables[0].columns[0].type: unknown type 'Strng'"),
              std::string::npos);
    EXPECT_NE(from_json_error(R"({"tables": [{"name": "t", "columns": [{"name": "a", "type": "String", "length": "x"}]}]})")
                  .find("tables[0].columns[0].length"),
              std::string::npos);
    EXPECT_NE(from_json_error(R"({"tables": [{"name": "t", "columns": [{"name": "a", "type": "Integer", "nullable": 1}]}]})")
                  .find("tables[0].columns[0].nullable"),
              std::string::npos);
    EXPECT_NE(from_json_error(R"({"tables": [{"name": "t", "columns": [{"name": "a", "type": "Integer", "foreign_keys": [{"target": "nodot"}]}]}]})")
                  .find("tables[0].columns[0].foreign_keys[0].target"),
              std::string::npos);
    EXPECT_NE(from_json_error(R"({"tables": [{"name": "t", "columns": [{"name": "a", "type": "Integer"}], "indexes": [{"name": "i", "columns": ["zz"]}]}]})")
                  .find("tables[0]"),
              std::string::npos);
}

TEST_F(Schema, ReflectRoundTrip) {
    auto engine = testdb::engine();
    sa::MetaData m;
    // p.a is unique: PostgreSQL requires a foreign key's target to be a key.
    m.table("p", sa::Column("a", sa::Integer(), sa::unique()), sa::Column("b", sa::String(20)), sa::PrimaryKeyConstraint{{"b", "a"}});
    m.table("allt", sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("f", sa::Float()), sa::Column("n", sa::Numeric(10, 2), sa::nullable(false)),
            sa::Column("t", sa::Text(), sa::server_default("it's")), sa::Column("ts", sa::DateTime(), sa::server_default_sql("CURRENT_TIMESTAMP")),
            sa::Column("lb", sa::LargeBinary()), sa::Column("j", sa::JSON()), sa::Column("bi", sa::BigInteger()),
            sa::Column("s", sa::String(5), sa::unique()), sa::Column("e", sa::String(5), sa::index()),
            sa::Column("bo", sa::Boolean()), sa::Column("d", sa::Date()),
            sa::Column("pa", sa::Integer()), sa::Column("pb", sa::String(20)),
            sa::Column("ref", sa::Integer(), sa::ForeignKey("p.a", {.ondelete = "CASCADE"})),
            sa::Index{"ix_x", {"n", "f"}, true}, sa::ForeignKeyConstraint{{"pa", "pb"}, {"p.a", "p.b"}, {}});
    m.create_all(*engine);
    sa::MetaData r;
    r.reflect(*engine);
    ASSERT_EQ(r.tables().size(), 2u);
    for (const auto& [name, t] : m.tables()) {
        const sa::Table& t2 = r.get_table(name);
        EXPECT_EQ(sa::create_table_sql(*t, sa::sqlite_dialect()), sa::create_table_sql(t2, sa::sqlite_dialect()));
        EXPECT_EQ(sa::create_index_sql(*t, sa::sqlite_dialect()), sa::create_index_sql(t2, sa::sqlite_dialect()));
    }
    EXPECT_THROW(r.reflect(*engine, {"nope"}), sa::NoSuchTableError);
}
