// echo output captured with a test sink and compared line by line with SQLAlchemy's.
#include "fixtures.hpp"

#include <regex>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

class Echo : public ::testing::Test, public UsersSchema {
protected:
    std::ostringstream out;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    std::vector<spdlog::sink_ptr> saved;
    void SetUp() override {
        auto logger = sa::engine_logger();
        saved = logger->sinks();
        logger->sinks().clear();  // keep the test output quiet
        sink->set_formatter(sa::echo_formatter());
        logger->sinks().push_back(sink);
    }
    void TearDown() override {
        auto logger = sa::engine_logger();
        logger->sinks() = saved;
        logger->set_level(spdlog::level::info);
    }
    // Lines without the timestamp, timings replaced by X.
    std::vector<std::string> lines() {
        std::vector<std::string> result;
        std::istringstream in(out.str());
        std::string line;
        static const std::regex ts(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} )");
        static const std::regex gen(R"(\[(generated in|no key) [0-9.]+s\])");
        static const std::regex cached(R"(\[cached since [0-9.e-]+s ago\])");
        while (std::getline(in, line)) {
            bool stamped = std::regex_search(line, ts);
            line = std::regex_replace(line, ts, "");
            line = std::regex_replace(line, gen, "[$1 X]");
            line = std::regex_replace(line, cached, "[cached since X ago]");
            if (!stamped) line = "| " + line;  // continuation of a multi-line message
            result.push_back(line);
        }
        return result;
    }
};

TEST_F(Echo, LineShapeAndTransactionMessages) {
    auto engine = testdb::engine({.echo = true});
    EXPECT_EQ(spdlog::get("athanor.engine"), sa::engine_logger());
    metadata.create_all(*engine);
    auto conn = engine->connect();
    auto ins = users.insert();
    conn.execute(ins, {{"name", "ed"}, {"fullname", "Ed Jones"}, {"password", "edspassword"}});
    conn.execute(ins, {{"name", "wendy"}, {"fullname", "W"}, {"password", "x"}});
    conn.execute(sa::text("SELECT 1"));
    auto sp = conn.begin_nested();
    sp.rollback();
    conn.commit();
    std::vector<std::string> expected = {
        "INFO athanor.engine BEGIN (implicit)",
        "INFO athanor.engine PRAGMA main.table_info(\"users\")",
        "INFO athanor.engine [raw sql] ()",
        "INFO athanor.engine PRAGMA temp.table_info(\"users\")",
        "INFO athanor.engine [raw sql] ()",
        "INFO athanor.engine PRAGMA main.table_info(\"addresses\")",
        "INFO athanor.engine [raw sql] ()",
        "INFO athanor.engine PRAGMA temp.table_info(\"addresses\")",
        "INFO athanor.engine [raw sql] ()",
        "INFO athanor.engine ",
        "| CREATE TABLE users (",
        "| \tid INTEGER NOT NULL, ",
        "| \tname VARCHAR(50) NOT NULL, ",
        "| \tfullname VARCHAR(50), ",
        "| \tpassword VARCHAR(12), ",
        "| \tPRIMARY KEY (id), ",
        "| \tUNIQUE (name)",
        "| )",
        "| ",
        "| ",
        "INFO athanor.engine [no key X] ()",
        "INFO athanor.engine ",
        "| CREATE TABLE addresses (",
        "| \tid INTEGER NOT NULL, ",
        "| \temail VARCHAR(100) NOT NULL, ",
        "| \tuser_id INTEGER, ",
        "| \tPRIMARY KEY (id), ",
        "| \tFOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE",
        "| )",
        "| ",
        "| ",
        "INFO athanor.engine [no key X] ()",
        "INFO athanor.engine CREATE INDEX ix_addresses_email ON addresses (email)",
        "INFO athanor.engine [no key X] ()",
        "INFO athanor.engine COMMIT",
        "INFO athanor.engine BEGIN (implicit)",
        "INFO athanor.engine INSERT INTO users (name, fullname, password) VALUES (?, ?, ?)",
        "INFO athanor.engine [generated in X] ('ed', 'Ed Jones', 'edspassword')",
        "INFO athanor.engine INSERT INTO users (name, fullname, password) VALUES (?, ?, ?)",
        "INFO athanor.engine [cached since X ago] ('wendy', 'W', 'x')",
        "INFO athanor.engine SELECT 1",
        "INFO athanor.engine [raw sql] ()",
        "INFO athanor.engine SAVEPOINT sa_savepoint_1",
        "INFO athanor.engine [no key X] ()",
        "INFO athanor.engine ROLLBACK TO SAVEPOINT sa_savepoint_1",
        "INFO athanor.engine [no key X] ()",
        "INFO athanor.engine COMMIT",
    };
    EXPECT_EQ(lines(), expected);
    // The full line: "2026-11-24 23:10:35,241 INFO athanor.engine <message>".
    EXPECT_TRUE(std::regex_search(out.str(), std::regex(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO athanor\.engine BEGIN \(implicit\)\n)")));
}

TEST_F(Echo, ExecutemanyAndTruncation) {
    auto engine = testdb::engine({.echo = true});
    metadata.create_all(*engine);
    auto conn = engine->connect();
    out.str("");
    std::vector<sa::Params> rows;
    for (int i = 0; i < 12; ++i) rows.push_back({{"name", "u" + std::to_string(i)}});
    conn.execute(users.insert(), rows);
    conn.execute(users.insert(), {{"name", std::string(400, 'x')}, {"fullname", "it's"}, {"password", nullptr}});
    auto l = lines();
    // Another test in this process may have compiled these shapes already (the cache is
    // process-wide, as SQLAlchemy's is per engine): either stats prefix is right here.
    for (auto& line : l) line = std::regex_replace(line, std::regex(R"(\[cached since X ago\])"), "[generated in X]");
    ASSERT_EQ(l.size(), 5u);
    EXPECT_EQ(l[1], "INFO athanor.engine INSERT INTO users (name) VALUES (?)");
    EXPECT_EQ(l[2], "INFO athanor.engine [generated in X] (('u0',), ('u1',), ('u2',), ('u3',), ('u4',), ('u5',), "
                    "('u6',), ('u7',)  ... displaying 10 of 12 total bound parameter sets ...  ('u10',), ('u11',))");
    std::string x150(149, 'x');
    EXPECT_EQ(l[4], "INFO athanor.engine [generated in X] ('" + x150 + " ... (102 characters truncated) ... " + x150 +
                        "', \"it's\", None)");
}

TEST_F(Echo, DebugAddsRows) {
    auto engine = testdb::engine({.echo = "debug"});
    auto conn = engine->connect();
    conn.execute(sa::text("SELECT 1 AS a, 'x' AS b")).all();
    auto l = lines();
    ASSERT_EQ(l.size(), 5u);
    EXPECT_EQ(l[3], "DEBUG athanor.engine Col ('a', 'b')");
    EXPECT_EQ(l[4], "DEBUG athanor.engine Row (1, 'x')");
}

TEST_F(Echo, NoEchoLogsNothing) {
    auto engine = testdb::engine();
    metadata.create_all(*engine);
    auto conn = engine->connect();
    conn.execute(users.insert(), {{"name", "q"}});
    conn.commit();
    EXPECT_EQ(out.str(), "");
}
