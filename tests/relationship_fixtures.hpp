// Shared relationship fixtures: the tutorial's User/Address pair (declarative, cascade "all,
// delete-orphan", ordered), Post/Keyword many-to-many, and the Node adjacency list.
#pragma once
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "fixtures.hpp"

namespace relfix {
struct Address;
struct User {
    std::int64_t id = 0;
    std::string name, fullname;
    sa::Collection<Address> addresses;
};
struct Address {
    std::int64_t id = 0;
    std::string email_address;
    std::optional<std::int64_t> user_id;
    sa::Ref<User> user;
};


std::shared_ptr<Address> addr(std::string email) {
    return std::make_shared<Address>(Address{.id = 0, .email_address = std::move(email)});
}
}  // namespace relfix
using namespace relfix;

class Relationships : public ::testing::Test {
protected:
    sa::DeclarativeBase Base;
    std::shared_ptr<sa::Engine> engine = testdb::engine({.echo = true, .foreign_keys = true});
    sa::Table& users = Base.declare<User>("users",
        sa::mapped_column("id", &User::id, sa::primary_key()),
        sa::mapped_column("name", &User::name, sa::String(50)),
        sa::mapped_column("fullname", &User::fullname, sa::String(50)),
        sa::relationship("addresses", &User::addresses, sa::back_populates(&Address::user),
                         sa::cascade("all, delete-orphan"), sa::order_by(&Address::id)));
    sa::Table& addresses = Base.declare<Address>("addresses",
        sa::mapped_column("id", &Address::id, sa::primary_key()),
        sa::mapped_column("email_address", &Address::email_address, sa::String(100), sa::nullable(false)),
        sa::mapped_column("user_id", &Address::user_id, sa::ForeignKey("users.id")),
        sa::relationship("user", &Address::user, sa::back_populates(&User::addresses)));
    SqlLog sql;
    void SetUp() override {
        Base.metadata.create_all(*engine);
        sql.clear();
    }
    std::int64_t rows(const std::string& table, const std::string& where = "1=1") {
        auto c = engine->connect();
        return c.execute(sa::text("SELECT count(*) FROM " + table + " WHERE " + where)).scalar<std::int64_t>();
    }
};

namespace relfix {
struct Keyword;
struct Post {
    std::int64_t id = 0;
    std::string title;
    sa::Collection<Keyword> keywords;
};
struct Keyword {
    std::int64_t id = 0;
    std::string word;
    sa::Collection<Post> posts;
};
}  // namespace relfix

class ManyToMany : public ::testing::Test {
protected:
    sa::DeclarativeBase Base;
    sa::Table& post_keywords = Base.metadata.table("post_keywords",
        sa::Column("post_id", sa::Integer(), sa::ForeignKey("posts.id"), sa::primary_key()),
        sa::Column("keyword_id", sa::Integer(), sa::ForeignKey("keywords.id"), sa::primary_key()));
    sa::Table& posts = Base.declare<Post>("posts", sa::mapped_column("id", &Post::id, sa::primary_key()),
        sa::mapped_column("title", &Post::title, sa::String(50)),
        sa::relationship("keywords", &Post::keywords, sa::secondary(post_keywords), sa::back_populates(&Keyword::posts),
                         sa::order_by(&Keyword::word)));
    sa::Table& keywords = Base.declare<Keyword>("keywords", sa::mapped_column("id", &Keyword::id, sa::primary_key()),
        sa::mapped_column("word", &Keyword::word, sa::String(20)),
        sa::relationship("posts", &Keyword::posts, sa::secondary(post_keywords), sa::back_populates(&Post::keywords)));
    std::shared_ptr<sa::Engine> engine = testdb::engine({.echo = true, .foreign_keys = true});
    SqlLog sql;
    void SetUp() override {
        Base.metadata.create_all(*engine);
        sql.clear();
    }
    std::int64_t links() {
        auto c = engine->connect();
        return c.execute(sa::text("SELECT count(*) FROM post_keywords")).scalar<std::int64_t>();
    }
};

namespace relfix {
struct Node {
    std::int64_t id = 0;
    std::optional<std::int64_t> parent_id;
    std::string name;
    sa::Ref<Node> parent;
    sa::Collection<Node> children;
};
}  // namespace relfix

