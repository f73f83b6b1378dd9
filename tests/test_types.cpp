// Every type's round trip through the database (SQLite, PostgreSQL), NULL included.
#include "fixtures.hpp"

#include <limits>
#include <nlohmann/json.hpp>

class Types : public ::testing::Test {
protected:
    std::shared_ptr<sa::Engine> engine = testdb::engine();
    sa::MetaData m;
    sa::Table& t = m.table("t", sa::Column("id", sa::Integer(), sa::primary_key()),
        sa::Column("i", sa::Integer()), sa::Column("bi", sa::BigInteger()), sa::Column("f", sa::Float()),
        sa::Column("n", sa::Numeric(10, 2)), sa::Column("s", sa::String(20)), sa::Column("tx", sa::Text()),
        sa::Column("b", sa::Boolean()), sa::Column("d", sa::Date()), sa::Column("dt", sa::DateTime()),
        sa::Column("lb", sa::LargeBinary()), sa::Column("j", sa::JSON()));
    sa::Connection conn;
    void SetUp() override {
        m.create_all(*engine);
        conn = engine->connect();
    }
    sa::Row roundtrip(const sa::Params& p) {
        auto id = conn.execute(t.insert(), p).inserted_primary_key().at(0);
        return conn.execute(sa::select(t).where(t.c["id"] == id)).one();
    }
};

TEST_F(Types, IntegersAtTheExtremes) {
    auto lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
    if (testdb::postgres()) {
        // INTEGER is 32 bits on PostgreSQL: a 64-bit value is refused, never wrapped.
        try {
            roundtrip({{"i", lo}});
            FAIL() << "a 64-bit value was accepted by an INTEGER column";
        } catch (const sa::DataError& e) {
            EXPECT_EQ(e.sqlstate(), "22003");  // numeric_value_out_of_range
        }
        conn.rollback();
        auto row = roundtrip({{"i", std::int64_t{INT32_MIN}}, {"bi", lo}});
        EXPECT_EQ(row.get<std::int64_t>("i"), INT32_MIN);
        EXPECT_EQ(row.get<std::int64_t>("bi"), lo);
        EXPECT_EQ(roundtrip({{"bi", hi}}).get<std::int64_t>("bi"), hi);
        return;
    }
    auto row = roundtrip({{"i", lo}, {"bi", hi}});
    EXPECT_EQ(row.get<std::int64_t>("i"), lo);
    EXPECT_EQ(row.get<std::int64_t>("bi"), hi);
    EXPECT_THROW(row.get<int>("i"), sa::ArgumentError);  // never wrapped into an int
}

TEST_F(Types, FloatsAndNumeric) {
    auto row = roundtrip({{"f", 0.1}, {"n", 12.25}});
    EXPECT_DOUBLE_EQ(row.get<double>("f"), 0.1);
    EXPECT_DOUBLE_EQ(row.get<double>("n"), 12.25);
}

TEST_F(Types, UnicodeTextWithQuotesAndZeroBytes) {
    std::string s = "h\xC3\xA9llo \xE2\x9C\x93 'quoted' \"dq\"";
    std::string with_nul("a\0b", 3);
    if (testdb::postgres()) {
        // PostgreSQL text cannot hold a zero byte: refused before it is sent (never cut short).
        EXPECT_EQ(roundtrip({{"tx", s}}).get<std::string>("tx"), s);
        // VARCHAR(20) is enforced (21 characters here); SQLite keeps any length.
        EXPECT_THROW(roundtrip({{"s", s}}), sa::DataError);
        conn.rollback();
        try {
            roundtrip({{"tx", with_nul}});
            FAIL() << "a zero byte reached a PostgreSQL text column";
        } catch (const sa::DataError& e) {
            EXPECT_EQ(e.sqlstate(), "22021");  // character_not_in_repertoire
        }
        return;
    }
    auto row = roundtrip({{"s", s}, {"tx", with_nul}});
    EXPECT_EQ(row.get<std::string>("s"), s);
    EXPECT_EQ(row.get<std::string>("tx"), with_nul);
}

TEST_F(Types, BlobsWithZeroBytesAndEmpty) {
    sa::Blob b{0, 1, 0, 255, 0};
    auto row = roundtrip({{"lb", b}});
    EXPECT_EQ(row.get<sa::Blob>("lb"), b);
    auto empty = roundtrip({{"lb", sa::Blob{}}});
    EXPECT_EQ(empty["lb"].kind(), sa::Value::Kind::blob);
    EXPECT_TRUE(empty.get<sa::Blob>("lb").empty());
}

TEST_F(Types, BooleanDateDateTime) {
    using namespace std::chrono;
    sa::date d = 2026y / November / 24d;
    sa::datetime dt = sys_days(d) + 23h + 10min + 35s + 241123us;
    auto row = roundtrip({{"b", true}, {"d", d}, {"dt", dt}});
    EXPECT_TRUE(row.get<bool>("b"));
    EXPECT_EQ(row.get<sa::date>("d"), d);
    EXPECT_EQ(row.get<sa::datetime>("dt"), dt);
    EXPECT_EQ(row.get<std::string>("dt"), "2026-11-24 23:10:35.241123");  // SQLAlchemy's storage form
    EXPECT_EQ(row.get<std::string>("d"), "2026-11-24");
}

TEST_F(Types, JsonDocuments) {
    nlohmann::json doc = {{"a", 1}, {"b", {1, 2, "x"}}, {"u", "\xC3\xA9"}};
    auto row = roundtrip({{"j", doc}});
    EXPECT_EQ(row.get<nlohmann::json>("j"), doc);
}

TEST_F(Types, NullEverywhere) {
    auto row = roundtrip({{"i", nullptr}});
    for (const char* col : {"i", "bi", "f", "n", "s", "tx", "b", "d", "dt", "lb", "j"}) {
        EXPECT_TRUE(row[std::string_view(col)].is_null()) << col;
    }
    EXPECT_EQ(row.get<std::optional<std::int64_t>>("i"), std::nullopt);
    EXPECT_EQ(row.get<std::optional<std::string>>("s"), std::nullopt);
    EXPECT_TRUE(row.get<nlohmann::json>("j").is_null());
    EXPECT_THROW(row.get<std::int64_t>("i"), sa::ArgumentError);  // NULL is not an int
}

TEST_F(Types, OptionalValuesBind) {
    std::optional<std::string> some = "x", none;
    auto row = roundtrip({{"s", some}, {"tx", none}});
    EXPECT_EQ(row.get<std::optional<std::string>>("s"), "x");
    EXPECT_TRUE(row["tx"].is_null());
}

TEST(Value, ReprIsPythonLike) {
    EXPECT_EQ(sa::Value().repr(), "None");
    EXPECT_EQ(sa::Value(5).repr(), "5");
    EXPECT_EQ(sa::Value(1.5).repr(), "1.5");
    EXPECT_EQ(sa::Value(2.0).repr(), "2.0");
    EXPECT_EQ(sa::Value("ed").repr(), "'ed'");
    EXPECT_EQ(sa::Value("it's").repr(), "\"it's\"");
    EXPECT_EQ(sa::Value(sa::Blob{0, 'a'}).repr(), "b'\\x00a'");
}

TEST(Value, ConversionErrorsNameTheKinds) {
    try {
        (void)sa::Value("x").as<std::int64_t>();
        FAIL();
    } catch (const sa::ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("text"), std::string::npos);
    }
    EXPECT_THROW((void)sa::Value("2026-13-45").as<sa::date>(), sa::ArgumentError);
}

TEST(Value, AViewIsKeptAsAValueOfItsOwn) {
    const std::vector<sa::Value> values{sa::Value(), sa::Value(-7), sa::Value(2.5), sa::Value("short"),
                                        sa::Value(std::string(40, 'L')), sa::Value(sa::Blob{0, 255}),
                                        sa::Value(sa::Blob{})};
    for (const auto& v : values) {
        auto view = sa::ValueView::of(v);
        sa::Value kept(view);
        EXPECT_EQ(kept, v) << v.repr();
        EXPECT_EQ(view.to_value(), v) << v.repr();
        if (auto t = kept.if_text()) {
            EXPECT_NE(t->data(), v.if_text()->data()) << "the text is copied";
        }
    }
}

// Views compare text and blobs byte for byte at every length (short ones in line, by
// overlapping loads): equal bytes are equal, one byte other anywhere, or one byte more, is not.
TEST(ValueView, TextAndBlobsCompareEveryByteAtEveryLength) {
    for (std::size_t len = 0; len <= 80; ++len) {
        std::string a;
        for (std::size_t i = 0; i < len; ++i) a.push_back(static_cast<char>(i * 37 + 11));
        std::string b = a;  // the same bytes in another buffer
        const sa::Value ta(a), tb(b);
        EXPECT_EQ(sa::ValueView::of(ta), sa::ValueView::of(tb)) << len;
        const sa::Value ba(sa::Blob(a.begin(), a.end())), bb(sa::Blob(b.begin(), b.end()));
        EXPECT_EQ(sa::ValueView::of(ba), sa::ValueView::of(bb)) << len;
        EXPECT_FALSE(sa::ValueView::of(ta) == sa::ValueView::of(ba)) << "text is not a blob, " << len;
        for (std::size_t at = 0; at < len; ++at) {
            std::string c = a;
            c[at] = static_cast<char>(c[at] ^ 0x01);
            const sa::Value tc(c);
            EXPECT_FALSE(sa::ValueView::of(ta) == sa::ValueView::of(tc)) << "length " << len << ", byte " << at;
            EXPECT_FALSE(sa::ValueView::of(tc) == sa::ValueView::of(ta)) << "length " << len << ", byte " << at;
        }
        const sa::Value longer(a + '\0');
        EXPECT_FALSE(sa::ValueView::of(ta) == sa::ValueView::of(longer)) << len;
    }
}

TEST(Params, SetMovesATextInAndCopiesOnlyWhatItIsLent) {
    sa::Params p;
    std::string big(100, 'x');  // past the short-string buffer: a heap block of its own
    const char* block = big.data();
    p.set("t", std::move(big));
    EXPECT_EQ(p.at("t").as_text().data(), block) << "an rvalue string must be moved in, not copied";

    std::string lent(100, 'y');
    p.set(std::string("l"), lent);  // an lvalue is copied; the caller's string is untouched
    EXPECT_EQ(lent, std::string(100, 'y'));
    EXPECT_NE(p.at("l").as_text().data(), lent.data());

    p.set("t", 7);  // replacing keeps the place and the size
    p.set("n", nullptr);
    p.set("o", std::optional<int>{});
    p.set("v", sa::Value(2.5));
    p.set("b", {});  // a braced value: NULL
    ASSERT_EQ(p.size(), 6u);
    EXPECT_TRUE(p.at("b").is_null());
    EXPECT_EQ(p.begin()->first, "t");
    EXPECT_EQ(p.at("t"), sa::Value(7));
    EXPECT_TRUE(p.at("n").is_null());
    EXPECT_TRUE(p.at("o").is_null());
    EXPECT_EQ(p.at("v"), sa::Value(2.5));

    // A value of the same Params, set under a new name while the buffer grows, and under its own.
    sa::Params q;
    q.set("a", std::string(50, 'a'));
    for (int i = 0; i < 40; ++i) q.set("k" + std::to_string(i), q.at("a"));
    q.set("a", q.at("a"));
    EXPECT_EQ(q.size(), 41u);
    EXPECT_EQ(q.at("k39").as_text(), std::string(50, 'a'));
    EXPECT_EQ(q.at("a").as_text(), std::string(50, 'a'));
}

TEST(Params, LastValueWinsAndLookup) {
    sa::Params p{{"a", 1}, {"b", "x"}, {"a", 2}};
    EXPECT_EQ(p.size(), 2u);
    EXPECT_EQ(p.at("a"), sa::Value(2));
    EXPECT_EQ(p.find("zz"), nullptr);
    EXPECT_THROW((void)p.at("zz"), sa::ArgumentError);
}
