"""Moving data between descriptors inside the sentry: sendfile, splice, tee,
copy_file_range (and fadvise/readahead/sync_file_range).  Being written (issue 4)."""
