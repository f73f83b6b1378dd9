#include <athanor/athanor.hpp>

#include <iostream>

namespace sa = athanor;

int main() {
    auto engine = sa::create_engine("sqlite://");
    sa::MetaData metadata;
    sa::Table& t = metadata.table("t", sa::Column("id", sa::Integer(), sa::primary_key()),
                                  sa::Column("name", sa::String(20)));
    metadata.create_all(*engine);
    sa::Connection conn = engine->connect();
    conn.execute(t.insert(), {{"name", "x"}});
    auto n = conn.execute(sa::select(sa::func::count(t.c["id"]))).scalar<std::int64_t>();
    if (n != 1) return 1;
    std::cout << "consumer ok\n";
    return 0;
}
