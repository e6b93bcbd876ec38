# Runs `npm ci` in UI_DIR when its node_modules is missing or older than
# package-lock.json (a fresh clone, or a lockfile change), so the console
# builds from the committed lockfile without reinstalling on every build.
set(lock ${UI_DIR}/package-lock.json)
set(marker ${UI_DIR}/node_modules/.package-lock.json)
if(NOT EXISTS ${marker} OR ${lock} IS_NEWER_THAN ${marker})
  execute_process(COMMAND ${NPM} ci --no-audit --no-fund WORKING_DIRECTORY ${UI_DIR} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "npm ci failed in ${UI_DIR} (rc ${rc}); is the npm registry reachable?")
  endif()
endif()
