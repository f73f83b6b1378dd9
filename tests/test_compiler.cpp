// The SQL text of each construct, compared with what SQLAlchemy emits for SQLite.
#include "fixtures.hpp"

class Compiler : public ::testing::Test, public UsersSchema {};

TEST_F(Compiler, ApiSelectWithWhereOrderLimit) {
    auto stmt = sa::select(users.c["id"], users.c["name"])
                    .where(sa::and_(users.c["name"].like("e%"), users.c["id"] > 0))
                    .order_by(users.c["id"].desc())
                    .limit(10)
                    .offset(0);
    EXPECT_EQ(sql(stmt),
              "SELECT users.id, users.name \nFROM users \nWHERE users.name LIKE ? AND users.id > ? "
              "ORDER BY users.id DESC\n LIMIT ? OFFSET ?");
    auto c = stmt.compile(sa::sqlite_dialect());
    ASSERT_EQ(c->binds.size(), 4u);
    EXPECT_EQ(c->binds[0].value, sa::Value("e%"));
    EXPECT_EQ(c->binds[2].value, sa::Value(10));
    EXPECT_EQ(c->keys, (std::vector<std::string>{"id", "name"}));
}

TEST_F(Compiler, LimitAloneStillBindsOffsetOnSqlite) {
    auto stmt = sa::select(users.c["id"]).limit(5);
    EXPECT_EQ(sql(stmt), "SELECT users.id \nFROM users\n LIMIT ? OFFSET ?");
    auto c = stmt.compile(sa::sqlite_dialect());
    EXPECT_EQ(c->binds[0].value, sa::Value(5));
    EXPECT_EQ(c->binds[1].value, sa::Value(0));
    auto off = sa::select(users.c["id"]).offset(3).compile(sa::sqlite_dialect());
    EXPECT_EQ(off->sql, "SELECT users.id \nFROM users\n LIMIT ? OFFSET ?");
    EXPECT_EQ(off->binds[0].value, sa::Value(-1));
    EXPECT_EQ(sa::select(users.c["id"]).limit(5).to_string(), "SELECT users.id \nFROM users\n LIMIT ?");
}

TEST_F(Compiler, BindsAreNumberedInTextOrder) {
    auto values = [](const sa::Executable& e) {
        std::vector<sa::Value> v;
        for (const auto& b : e.compile(sa::sqlite_dialect())->binds) v.push_back(b.value);
        return v;
    };
    EXPECT_EQ(values(sa::select(users.c["id"]).where(users.c["id"].between(1, 5))), (std::vector<sa::Value>{1, 5}));
    auto sq = sa::select(addresses.c["user_id"]).where(addresses.c["email"] == "in-sub").subquery();
    auto stmt = sa::select(users.c["id"])
                    .join(sq, sa::and_(users.c["id"] == sq.c["user_id"], users.c["name"] == "on"))
                    .where(users.c["name"] == "where");
    EXPECT_EQ(values(stmt), (std::vector<sa::Value>{"in-sub", "on", "where"}));
    EXPECT_EQ(values(sa::select(users.c["id"]).where((users.c["name"] + "a").ilike("b"))),
              (std::vector<sa::Value>{"a", "b"}));
    EXPECT_EQ(values(sa::select(users.c["id"]).where(
                  (users.c["name"] + "L").in_(sa::select(addresses.c["email"]).where(addresses.c["id"] > 7)))),
              (std::vector<sa::Value>{"L", 7}));
}

TEST_F(Compiler, QuotesKeywordsAndOddNames) {
    sa::MetaData m;
    sa::Table& o = m.table("order", sa::Column("select", sa::Integer(), sa::primary_key()),
                           sa::Column("my col", sa::String()), sa::Column("Mixed", sa::String()),
                           sa::Column("q\"t", sa::Integer()));
    EXPECT_EQ(sql(sa::select(o)),
              "SELECT \"order\".\"select\", \"order\".\"my col\", \"order\".\"Mixed\", "
              "\"order\".\"q\"\"t\" \nFROM \"order\"");
}

TEST_F(Compiler, JoinFromInfersOnClause) {
    EXPECT_EQ(sql(sa::select(users, addresses).join_from(users, addresses)),
              "SELECT users.id, users.name, users.fullname, users.password, addresses.id AS id_1, "
              "addresses.email, addresses.user_id \nFROM users JOIN addresses ON users.id = "
              "addresses.user_id");
    EXPECT_EQ(sql(sa::select(users).join(addresses)),
              "SELECT users.id, users.name, users.fullname, users.password \nFROM users JOIN "
              "addresses ON users.id = addresses.user_id");
}

TEST_F(Compiler, OuterJoinGroupByHaving) {
    auto stmt = sa::select(users.c["name"], sa::func::count(addresses.c["id"]))
                    .outerjoin(addresses)
                    .group_by(users.c["name"])
                    .having(sa::func::count(addresses.c["id"]) > 1);
    EXPECT_EQ(sql(stmt),
              "SELECT users.name, count(addresses.id) AS count_1 \nFROM users LEFT OUTER JOIN "
              "addresses ON users.id = addresses.user_id GROUP BY users.name \nHAVING "
              "count(addresses.id) > ?");
}

TEST_F(Compiler, JoinWithoutForeignKeyIsArgumentError) {
    sa::MetaData m;
    sa::Table& a = m.table("a", sa::Column("id", sa::Integer(), sa::primary_key()));
    sa::Table& b = m.table("b", sa::Column("id", sa::Integer(), sa::primary_key()));
    try {
        (void)sa::select(a).join(b);
        FAIL() << "expected ArgumentError";
    } catch (const sa::ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("Can't find any foreign key relationships between 'a' and 'b'"),
                  std::string::npos);
    }
}

TEST_F(Compiler, JoinWithTwoForeignKeysIsAmbiguous) {
    sa::MetaData m;
    m.table("p", sa::Column("id", sa::Integer(), sa::primary_key()));
    sa::Table& c = m.table("c", sa::Column("id", sa::Integer(), sa::primary_key()),
                           sa::Column("a", sa::Integer(), sa::ForeignKey("p.id")),
                           sa::Column("b", sa::Integer(), sa::ForeignKey("p.id")));
    EXPECT_THROW((void)sa::select(*m.find_table("p")).join(c), sa::ArgumentError);
    // With an explicit ON clause the join is fine.
    EXPECT_EQ(sql(sa::select(*m.find_table("p")).join(c, m.get_table("p").c["id"] == c.c["a"])),
              "SELECT p.id \nFROM p JOIN c ON p.id = c.a");
}

TEST_F(Compiler, InNotInBetweenIsNull) {
    EXPECT_EQ(sql(sa::select(users).where(users.c["id"].in_({1, 2, 3})).distinct()),
              "SELECT DISTINCT users.id, users.name, users.fullname, users.password \nFROM users "
              "\nWHERE users.id IN (?, ?, ?)");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"].not_in({"a"}))),
              "SELECT users.id \nFROM users \nWHERE (users.name NOT IN (?))");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["id"].between(1, 5))),
              "SELECT users.id \nFROM users \nWHERE users.id BETWEEN ? AND ?");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"].is_(nullptr))),
              "SELECT users.id \nFROM users \nWHERE users.name IS NULL");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"].is_not(nullptr))),
              "SELECT users.id \nFROM users \nWHERE users.name IS NOT NULL");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"] == nullptr)),
              "SELECT users.id \nFROM users \nWHERE users.name IS NULL");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["id"].in_(std::vector<sa::Value>{}))),
              "SELECT users.id \nFROM users \nWHERE 1 != 1");
}

TEST_F(Compiler, BooleanOperatorsAndPrecedence) {
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(!(users.c["id"] == 1))),
              "SELECT users.id \nFROM users \nWHERE users.id != ?");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(sa::or_(users.c["id"] == 1, users.c["id"] == 2,
                                                         sa::and_(users.c["id"] == 3, users.c["name"] == "x")))),
              "SELECT users.id \nFROM users \nWHERE users.id = ? OR users.id = ? OR users.id = ? AND "
              "users.name = ?");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where((users.c["id"] == 1 || users.c["id"] == 2) &&
                                                  users.c["name"] == "x")),
              "SELECT users.id \nFROM users \nWHERE (users.id = ? OR users.id = ?) AND users.name = ?");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["id"] > 1).where(users.c["id"] < 5)),
              "SELECT users.id \nFROM users \nWHERE users.id > ? AND users.id < ?");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["id"] != 1).where(users.c["id"] <= 1)
                      .where(users.c["id"] >= 1).where(-users.c["id"] < 1)),
              "SELECT users.id \nFROM users \nWHERE users.id != ? AND users.id <= ? AND users.id >= ? "
              "AND -users.id < ?");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(sa::true_())), "SELECT users.id \nFROM users \nWHERE 1 = 1");
}

TEST_F(Compiler, ArithmeticLabelsAndConcatenation) {
    EXPECT_EQ(sql(sa::select(users.c["name"].label("n"), (users.c["id"] + 1) * 2, users.c["name"] + "x",
                             users.c["name"].concat("y"))),
              "SELECT users.name AS n, (users.id + ?) * ? AS anon_1, users.name || ? AS anon_2, "
              "users.name || ? AS anon_3 \nFROM users");
    EXPECT_EQ(sql(sa::select(users.c["id"] / 2, users.c["id"] - 3)),
              "SELECT users.id / ? AS anon_1, users.id - ? AS anon_2 \nFROM users");
}

TEST_F(Compiler, FunctionsCastCaseLiterals) {
    auto stmt = sa::select(
        sa::cast(users.c["id"], sa::String()),
        sa::case_({{users.c["id"] == 1, "one"}, {users.c["id"] == 2, "two"}}, "many"), sa::literal(5),
        sa::null(), sa::true_(), sa::false_(), sa::func::coalesce(users.c["name"], "x"),
        sa::func::lower(users.c["name"]), sa::func::length(users.c["name"]), sa::func::call("my_fn", 1, 2));
    EXPECT_EQ(sql(stmt),
              "SELECT CAST(users.id AS VARCHAR) AS id, CASE WHEN (users.id = ?) THEN ? WHEN (users.id = ?) "
              "THEN ? ELSE ? END AS anon_1, ? AS anon_2, NULL AS anon_3, 1 AS anon_4, 0 AS anon_5, "
              "coalesce(users.name, ?) AS coalesce_1, lower(users.name) AS lower_1, length(users.name) AS "
              "length_1, my_fn(?, ?) AS my_fn_1 \nFROM users");
    EXPECT_EQ(sql(sa::select(sa::func::count()).select_from(users)), "SELECT count(*) AS count_1 \nFROM users");
}

TEST_F(Compiler, LikeVariants) {
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"].ilike("%a"))),
              "SELECT users.id \nFROM users \nWHERE lower(users.name) LIKE lower(?)");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"].startswith("a"))
                      .where(users.c["name"].contains("b")).where(users.c["name"].endswith("c"))),
              "SELECT users.id \nFROM users \nWHERE (users.name LIKE ? || '%') AND (users.name LIKE '%' || ? "
              "|| '%') AND (users.name LIKE '%' || ?)");
}

TEST_F(Compiler, AliasesSubqueriesExistsScalar) {
    auto u2 = users.alias("u2");
    EXPECT_EQ(sql(sa::select(users.c["id"], u2.c["id"]).where(users.c["id"] == u2.c["id"])),
              "SELECT users.id, u2.id AS id_1 \nFROM users, users AS u2 \nWHERE users.id = u2.id");
    auto sq = sa::select(addresses.c["user_id"], sa::func::count().label("cnt"))
                  .group_by(addresses.c["user_id"])
                  .subquery();
    EXPECT_EQ(sql(sa::select(users.c["name"], sq.c["cnt"]).join(sq, users.c["id"] == sq.c["user_id"])),
              "SELECT users.name, anon_1.cnt \nFROM users JOIN (SELECT addresses.user_id AS user_id, "
              "count(*) AS cnt \nFROM addresses GROUP BY addresses.user_id) AS anon_1 ON users.id = "
              "anon_1.user_id");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(sa::exists().where(addresses.c["user_id"] == users.c["id"]))),
              "SELECT users.id \nFROM users \nWHERE EXISTS (SELECT * \nFROM addresses \nWHERE "
              "addresses.user_id = users.id)");
    EXPECT_EQ(sql(sa::select(users.c["name"],
                             sa::select(sa::func::count(addresses.c["id"]))
                                 .where(addresses.c["user_id"] == users.c["id"])
                                 .scalar_subquery()
                                 .label("c"))),
              "SELECT users.name, (SELECT count(addresses.id) AS count_1 \nFROM addresses \nWHERE "
              "addresses.user_id = users.id) AS c \nFROM users");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["id"].in_(sa::select(addresses.c["user_id"])))),
              "SELECT users.id \nFROM users \nWHERE users.id IN (SELECT addresses.user_id \nFROM addresses)");
}

TEST_F(Compiler, Unions) {
    EXPECT_EQ(sql(sa::union_(sa::select(users.c["id"]), sa::select(addresses.c["id"]))),
              "SELECT users.id \nFROM users UNION SELECT addresses.id \nFROM addresses");
    EXPECT_EQ(sql(sa::union_all(sa::select(users.c["id"]), sa::select(addresses.c["id"])).order_by(users.c["id"])),
              "SELECT users.id \nFROM users UNION ALL SELECT addresses.id \nFROM addresses ORDER BY id");
}

TEST_F(Compiler, InsertUpdateDelete) {
    sa::Params p{{"name", "ed"}, {"fullname", "Ed Jones"}};
    EXPECT_EQ(users.insert().compile(sa::sqlite_dialect(), &p)->sql,
              "INSERT INTO users (name, fullname) VALUES (?, ?)");
    EXPECT_EQ(sql(users.insert().values({{"password", "p"}, {"name", "ed"}})),
              "INSERT INTO users (name, password) VALUES (?, ?)");
    EXPECT_EQ(sql(users.insert().values(std::vector<sa::Params>{{{"name", "a"}}, {{"name", "b"}}})),
              "INSERT INTO users (name) VALUES (?), (?)");
    EXPECT_EQ(sql(users.insert()), "INSERT INTO users DEFAULT VALUES");
    EXPECT_EQ(sql(users.insert().values({{"name", "x"}}).returning(users.c["id"])),
              "INSERT INTO users (name) VALUES (?) RETURNING id");
    EXPECT_EQ(sql(users.update().where(users.c["id"] == 1).values({{"fullname", "X"}})),
              "UPDATE users SET fullname=? WHERE users.id = ?");
    EXPECT_EQ(sql(users.update().values({{"id", users.c["id"] + 1}}).where(users.c["name"] == "x")),
              "UPDATE users SET id=(users.id + ?) WHERE users.name = ?");
    EXPECT_EQ(sql(users.delete_().where(users.c["name"].in_({"a", "b"}))),
              "DELETE FROM users WHERE users.name IN (?, ?)");
    EXPECT_EQ(sql(users.delete_()), "DELETE FROM users");
}

TEST_F(Compiler, UnknownColumnsAreErrors) {
    EXPECT_THROW((void)users.c["nope"], sa::ArgumentError);
    EXPECT_THROW((void)users.insert().values({{"nope", 1}}), sa::ArgumentError);
    sa::Params p{{"name", "a"}, {"bogus", 1}};
    EXPECT_THROW((void)users.insert().compile(sa::sqlite_dialect(), &p), sa::CompileError);
    EXPECT_THROW((void)sql(users.update()), sa::CompileError);
}

TEST_F(Compiler, EveryValueIsBound) {
    // An injection attempt stays a parameter value; nothing of it reaches the SQL text.
    std::string evil = "x'; DROP TABLE users; --";
    auto stmt = sa::select(users.c["id"]).where(users.c["name"] == evil);
    EXPECT_EQ(sql(stmt), "SELECT users.id \nFROM users \nWHERE users.name = ?");
    EXPECT_EQ(stmt.compile(sa::sqlite_dialect())->binds[0].value, sa::Value(evil));
}

TEST_F(Compiler, CompiledOncePerStatement) {
    auto stmt = sa::select(users.c["id"]).where(users.c["name"] == sa::bindparam("n"));
    bool hit = true;
    auto first = stmt.compile(sa::sqlite_dialect(), nullptr, &hit);
    EXPECT_FALSE(hit);
    auto copy = stmt;  // copies share the cache
    auto second = copy.compile(sa::sqlite_dialect(), nullptr, &hit);
    EXPECT_TRUE(hit);
    EXPECT_EQ(first.get(), second.get());
    // A derived statement is a different statement.
    copy.where(users.c["id"] > 1).compile(sa::sqlite_dialect(), nullptr, &hit);
    EXPECT_FALSE(hit);
}

TEST_F(Compiler, StatementsOfOneShapeCompileOnce) {
    // Built apart, alike but for their values: the second reuses the first's compiled form, with
    // its own values.
    auto a = sa::select(users.c["id"]).where(users.c["name"] == "shape-a").where(users.c["id"].between(3, 4)).limit(7);
    auto b = sa::select(users.c["id"]).where(users.c["name"] == "shape-b").where(users.c["id"].between(5, 6)).limit(7);
    bool hit = true;
    auto ca = a.compile(sa::sqlite_dialect(), nullptr, &hit);
    auto cb = b.compile(sa::sqlite_dialect(), nullptr, &hit);
    EXPECT_TRUE(hit);
    EXPECT_EQ(ca->sql, cb->sql);
    auto values = [](const sa::Compiled& c) {
        std::vector<sa::Value> v;
        for (const auto& s : c.binds) v.push_back(s.value);
        return v;
    };
    EXPECT_EQ(values(*cb), (std::vector<sa::Value>{"shape-b", 5, 6, 7, 0}));
    EXPECT_EQ(values(*ca), (std::vector<sa::Value>{"shape-a", 3, 4, 7, 0}));
    // A different limit, operator, alias or label is a different shape.
    b.limit(8).compile(sa::sqlite_dialect(), nullptr, &hit);
    EXPECT_FALSE(hit);
    sa::select(users.c["id"]).where(users.c["name"] != "x").where(users.c["id"].between(5, 6)).limit(7)
        .compile(sa::sqlite_dialect(), nullptr, &hit);
    EXPECT_FALSE(hit);
    auto u2 = users.alias("u2"), u3 = users.alias("u3");
    auto s2 = sa::select(u2.c["id"]).compile(sa::sqlite_dialect(), nullptr, &hit);
    auto s3 = sa::select(u3.c["id"]).compile(sa::sqlite_dialect(), nullptr, &hit);
    EXPECT_FALSE(hit);
    EXPECT_NE(s2->sql, s3->sql);
}

TEST_F(Compiler, ShapeCacheKeepsEachTablesDefaults) {
    // Two schemas with the same names: the INSERT text differs when a default adds a column,
    // and each statement evaluates its own table's default.
    sa::MetaData m1, m2;
    sa::Table& t1 = m1.table("dflt", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("v", sa::Integer(), sa::default_(1)));
    sa::Table& t2 = m2.table("dflt", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("v", sa::Integer()));
    sa::MetaData m3;
    sa::Table& t3 = m3.table("dflt", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("v", sa::Integer(), sa::default_(3)));
    sa::Params p{{"id", 1}};
    auto c1 = t1.insert().compile(sa::sqlite_dialect(), &p);
    auto c2 = t2.insert().compile(sa::sqlite_dialect(), &p);
    bool hit = false;
    auto c3 = t3.insert().compile(sa::sqlite_dialect(), &p, &hit);
    EXPECT_EQ(c1->sql, "INSERT INTO dflt (id, v) VALUES (?, ?)");
    EXPECT_EQ(c2->sql, "INSERT INTO dflt (id) VALUES (?)");
    EXPECT_TRUE(hit);  // same shape as t1's
    std::vector<const sa::Value*> out;
    std::vector<sa::Value> scratch;
    c3->bind_values(p, out, scratch);
    EXPECT_EQ(*out[1], sa::Value(3));  // t3's default, not t1's
    EXPECT_EQ(c3->table, &t3);
}

TEST_F(Compiler, TextBindsBecomePlaceholders) {
    auto t = sa::text("SELECT * FROM t WHERE a = :a AND b = :b_2 AND c = 'x:y' AND d::int = 1");
    auto c = t.compile(sa::sqlite_dialect());
    EXPECT_EQ(c->sql, "SELECT * FROM t WHERE a = ? AND b = ? AND c = 'x:y' AND d::int = 1");
    ASSERT_EQ(c->binds.size(), 2u);
    EXPECT_EQ(c->binds[0].key, "a");
    EXPECT_EQ(c->binds[1].key, "b_2");
}

TEST_F(Compiler, DefaultDialectPrintsWithoutDatabase) {
    EXPECT_EQ(sa::select(users.c["id"]).to_string(), "SELECT users.id \nFROM users");
}

// Compiled forms are cached per dialect object, by an id no other dialect gets: a dialect
// created where a destroyed one lived (the same address) compiles afresh.
namespace {
struct NoSchemaDialect : sa::Dialect {
    bool has_table(sa::SchemaConnection&, std::string_view) const override { return false; }
    std::vector<std::string> get_table_names(sa::SchemaConnection&) const override { return {}; }
    sa::ReflectedTable reflect_table(sa::SchemaConnection&, std::string_view) const override { return {}; }
};
struct QmarkDialect : NoSchemaDialect {
    std::string_view name() const noexcept override { return "qmark"; }
};
struct NumberedDialect : NoSchemaDialect {
    std::string_view name() const noexcept override { return "numbered"; }
    std::string bind_placeholder(std::size_t i) const override { return "$" + std::to_string(i + 1); }
};
}  // namespace

TEST_F(Compiler, ADialectCreatedWhereAnotherWasCompilesAfresh) {
    auto stmt = sa::select(users.c["id"]).where(users.c["id"] == sa::bindparam("x"));
    alignas(std::max_align_t) unsigned char place[std::max(sizeof(QmarkDialect), sizeof(NumberedDialect))];
    for (int round = 0; round < 2; ++round) {
        auto* q = new (place) QmarkDialect();
        EXPECT_EQ(stmt.compile(*q)->sql, "SELECT users.id \nFROM users \nWHERE users.id = ?");
        q->~QmarkDialect();
        auto* n = new (place) NumberedDialect();  // at the address the other one had
        EXPECT_EQ(stmt.compile(*n)->sql, "SELECT users.id \nFROM users \nWHERE users.id = $1");
        n->~NumberedDialect();
    }
}

// ---- PostgreSQL: the text SQLAlchemy's postgresql dialect compiles for the same constructs
// (str(stmt.compile(dialect=postgresql.dialect(paramstyle="numeric"))) with :n read as $n).

inline std::string pg(const sa::Executable& stmt) { return stmt.to_string(sa::postgresql_dialect()); }

TEST_F(Compiler, PostgresqlSelectLimitOffset) {
    EXPECT_EQ(pg(sa::select(users.c["id"], users.c["name"])
                     .where(sa::and_(users.c["name"].like("e%"), users.c["id"] > 0))
                     .order_by(users.c["id"].desc())
                     .limit(10)
                     .offset(0)),
              "SELECT users.id, users.name \nFROM users \nWHERE users.name LIKE $1 AND users.id > $2 ORDER BY "
              "users.id DESC \n LIMIT $3 OFFSET $4");
    EXPECT_EQ(pg(sa::select(users.c["id"]).limit(5)), "SELECT users.id \nFROM users \n LIMIT $1");
    EXPECT_EQ(pg(sa::select(users.c["id"]).offset(3)), "SELECT users.id \nFROM users\n LIMIT ALL OFFSET $1");
    auto c = sa::select(users.c["id"]).limit(5).compile(sa::postgresql_dialect());
    ASSERT_EQ(c->binds.size(), 1u);  // no OFFSET 0 invented
    EXPECT_EQ(c->binds[0].value, sa::Value(5));
}

TEST_F(Compiler, PostgresqlOperators) {
    EXPECT_EQ(pg(sa::select(users.c["id"]).where(users.c["name"].ilike("%a"))),
              "SELECT users.id \nFROM users \nWHERE users.name ILIKE $1");
    EXPECT_EQ(pg(sa::select(users.c["id"]).where(users.c["name"].startswith("a"))
                     .where(users.c["name"].contains("b")).where(users.c["name"].endswith("c"))),
              "SELECT users.id \nFROM users \nWHERE (users.name LIKE $1 || '%') AND (users.name LIKE '%' || $2 "
              "|| '%') AND (users.name LIKE '%' || $3)");
    EXPECT_EQ(pg(sa::select(users.c["id"]).where(users.c["name"].is_distinct_from("x"))),
              "SELECT users.id \nFROM users \nWHERE users.name IS DISTINCT FROM $1");
    EXPECT_EQ(pg(sa::select(users.c["id"]).where(users.c["name"].is_not_distinct_from("x"))),
              "SELECT users.id \nFROM users \nWHERE users.name IS NOT DISTINCT FROM $1");
    // SQLite's NULL-safe operators, as SQLAlchemy's sqlite dialect renders them.
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"].is_distinct_from("x"))),
              "SELECT users.id \nFROM users \nWHERE users.name IS NOT ?");
    EXPECT_EQ(sql(sa::select(users.c["id"]).where(users.c["name"].is_not_distinct_from("x"))),
              "SELECT users.id \nFROM users \nWHERE users.name IS ?");
    EXPECT_EQ(pg(sa::select(users.c["id"]).where(sa::true_())), "SELECT users.id \nFROM users \nWHERE true");
    EXPECT_EQ(pg(sa::select(users.c["id"]).where(users.c["id"].in_({1, 2, 3})).distinct()),
              "SELECT DISTINCT users.id \nFROM users \nWHERE users.id IN ($1, $2, $3)");
    auto u2 = users.alias("u2");
    EXPECT_EQ(pg(sa::select(users.c["id"], u2.c["id"]).where(users.c["id"] == u2.c["id"])),
              "SELECT users.id, u2.id AS id_1 \nFROM users, users AS u2 \nWHERE users.id = u2.id");
}

TEST_F(Compiler, PostgresqlCastsAndLiterals) {
    auto stmt = sa::select(sa::cast(users.c["id"], sa::String()), sa::true_(), sa::false_());
    EXPECT_EQ(pg(stmt), "SELECT CAST(users.id AS VARCHAR) AS id, true AS anon_1, false AS anon_2 \nFROM users");
    EXPECT_EQ(sa::postgresql_dialect().type_ddl(sa::DateTime()), "TIMESTAMP WITHOUT TIME ZONE");
    EXPECT_EQ(sa::postgresql_dialect().type_ddl(sa::LargeBinary()), "BYTEA");
}

TEST_F(Compiler, PostgresqlDmlReturnsKeys) {
    // The new key comes back by RETURNING in the same round trip (no lastrowid on a server).
    EXPECT_EQ(pg(users.insert().values({{"name", "x"}})), "INSERT INTO users (name) VALUES ($1) RETURNING users.id");
    auto c = users.insert().values({{"name", "x"}}).compile(sa::postgresql_dialect());
    EXPECT_EQ(c->lastrowid_column, 0);
    EXPECT_TRUE(c->keys.empty());  // not a result column of the statement
    EXPECT_EQ(pg(users.insert().values({{"name", "x"}, {"fullname", "y"}})),
              "INSERT INTO users (name, fullname) VALUES ($1, $2) RETURNING users.id");
    EXPECT_EQ(pg(users.insert().values({{"name", "x"}}).returning(users.c["id"])),
              "INSERT INTO users (name) VALUES ($1) RETURNING users.id");
    // A key given explicitly needs nothing back.
    EXPECT_EQ(pg(users.insert().values({{"id", 5}, {"name", "x"}})), "INSERT INTO users (id, name) VALUES ($1, $2)");
    EXPECT_EQ(pg(users.update().where(users.c["id"] == 1).values({{"fullname", "X"}}).returning(users.c["id"], users.c["name"])),
              "UPDATE users SET fullname=$1 WHERE users.id = $2 RETURNING users.id, users.name");
    EXPECT_EQ(pg(users.delete_().where(users.c["name"] == "a").returning({users.c["id"]})),
              "DELETE FROM users WHERE users.name = $1 RETURNING users.id");
}

TEST_F(Compiler, PostgresqlDdl) {
    EXPECT_EQ(sa::create_table_sql(users, sa::postgresql_dialect()),
              "\nCREATE TABLE users (\n\tid SERIAL NOT NULL, \n\tname VARCHAR(50) NOT NULL, \n\tfullname VARCHAR(50), "
              "\n\tpassword VARCHAR(12), \n\tPRIMARY KEY (id), \n\tUNIQUE (name)\n)\n\n");
    EXPECT_EQ(sa::create_table_sql(addresses, sa::postgresql_dialect()),
              "\nCREATE TABLE addresses (\n\tid SERIAL NOT NULL, \n\temail VARCHAR(100) NOT NULL, \n\tuser_id INTEGER, "
              "\n\tPRIMARY KEY (id), \n\tFOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE\n)\n\n");
    EXPECT_EQ(sa::create_index_sql(addresses, sa::postgresql_dialect()),
              std::vector<std::string>{"CREATE INDEX ix_addresses_email ON addresses (email)"});
    sa::MetaData m;
    auto& t = m.table("t", sa::Column("id", sa::BigInteger(), sa::primary_key()), sa::Column("flag", sa::Boolean()),
                      sa::Column("ts", sa::DateTime()), sa::Column("data", sa::LargeBinary()), sa::Column("j", sa::JSON()),
                      sa::Column("f", sa::Float()), sa::Column("n", sa::Numeric(10, 2)), sa::Column("d", sa::Date()),
                      sa::Column("sd", sa::String(10), sa::server_default("x")));
    EXPECT_EQ(sa::create_table_sql(t, sa::postgresql_dialect()),
              "\nCREATE TABLE t (\n\tid BIGSERIAL NOT NULL, \n\tflag BOOLEAN, \n\tts TIMESTAMP WITHOUT TIME ZONE, "
              "\n\tdata BYTEA, \n\tj JSON, \n\tf FLOAT, \n\tn NUMERIC(10, 2), \n\td DATE, \n\tsd VARCHAR(10) DEFAULT "
              "'x', \n\tPRIMARY KEY (id)\n)\n\n");
}

TEST_F(Compiler, PostgresqlTextBinds) {
    auto c = sa::text("SELECT * FROM t WHERE a = :a AND b = :b AND d::int = 1").compile(sa::postgresql_dialect());
    EXPECT_EQ(c->sql, "SELECT * FROM t WHERE a = $1 AND b = $2 AND d::int = 1");
}
