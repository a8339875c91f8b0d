"""inotify_init1/inotify_add_watch/inotify_rm_watch.  Being written (issue 4)."""
