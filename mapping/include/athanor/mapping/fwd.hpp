// Forward declarations of athanor's mapping types.
#pragma once

namespace athanor {
class Mapper;
class Registry;
class Record;
class DeclarativeBase;
template <class T>
class MapperBuilder;
}  // namespace athanor
