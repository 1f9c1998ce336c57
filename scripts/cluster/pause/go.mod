module orderstream.invalid/cluster-pause

go 1.26
