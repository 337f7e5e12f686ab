# check_exports.cmake - fails unless libmq.so (-DLIB=...) exports only libmq_* calls.
cmake_minimum_required(VERSION 3.18)
if(NOT LIB)
  message(FATAL_ERROR "usage: cmake -DLIB=<path to libmq.so> -P check_exports.cmake")
endif()
if(NOT EXISTS "${LIB}")
  message(FATAL_ERROR "${LIB} does not exist")
endif()

find_program(NM_PROGRAM NAMES nm llvm-nm)
if(NOT NM_PROGRAM)
  message(FATAL_ERROR "nm not found: cannot check the exports of ${LIB}")
endif()

execute_process(COMMAND "${NM_PROGRAM}" -D --defined-only "${LIB}"
  OUTPUT_VARIABLE nm_out ERROR_VARIABLE nm_err RESULT_VARIABLE nm_rc)
if(NOT nm_rc EQUAL 0)
  message(FATAL_ERROR "${NM_PROGRAM} -D --defined-only ${LIB} failed (${nm_rc}): ${nm_err}")
endif()

# Lines look like "0000000000001234 T libmq_send@@LIBMQ_1"; the version node
# itself is an absolute symbol ("A LIBMQ_1").
string(REPLACE "\n" ";" nm_lines "${nm_out}")
set(exported "")
set(bad "")
foreach(line IN LISTS nm_lines)
  if(NOT line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) ([^ ]+)$")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "@.*$" "" name "${CMAKE_MATCH_2}")
  if(type STREQUAL "A")
    continue() # version definitions such as LIBMQ_1
  endif()
  list(APPEND exported "${name}")
  # Functions (T, W, i) must all be libmq_*; so must exported data, if any.
  if(type MATCHES "^[TtWwiDdBbRrVvGgSs]$" AND NOT name MATCHES "^libmq_"
     AND NOT name MATCHES "^_(init|fini)$")
    list(APPEND bad "${name} (${type})")
  endif()
endforeach()

if(NOT exported)
  message(FATAL_ERROR "${LIB} exports no symbols at all:\n${nm_out}")
endif()
if(bad)
  string(REPLACE ";" ", " bad_text "${bad}")
  message(FATAL_ERROR "${LIB} exports symbols outside the libmq_ namespace: ${bad_text}")
endif()
if("mq_send" IN_LIST exported OR "mq_recv" IN_LIST exported)
  message(FATAL_ERROR "${LIB} exports a plain mq_send/mq_recv: it would replace glibc's")
endif()

# Every call declared in libmq.h, under its exported name.
foreach(required libmq_create libmq_attach libmq_detach libmq_remove libmq_send libmq_recv
        libmq_stats libmq_clients libmq_set_spin libmq_errdetail)
  if(NOT required IN_LIST exported)
    message(FATAL_ERROR "${LIB} does not export ${required}")
  endif()
endforeach()

list(LENGTH exported count)
message(STATUS "${LIB}: ${count} exported symbols, all libmq_*")
