"""Durable state: the lake, its schemas, the sink, jobs and epochs, sweeps, settling, compaction.

Homes: `layout` names every path; `fs.Lake` opens the filesystem and publishes every file (one
atomic commit, one codec); `sink` cuts rows into part files; `checkpoint` writes epoch manifests;
`settle` supersedes older rows and advances the cursor that `sweep` reads; `compact` merges;
`lock` keeps a second writer out.

The seam through which `harvest/` commits work, and all it knows of how commits are made:

    open_output(config.output) -> Lake          the lake of a config (`fs`)
    holding(LakeLock(lake, ...))                one writer per lake (`lock`); its `check` is the
                                                guard of prepare_job and of every commit
    prepare_job(lake, config, ...) -> JobState  settle what is finished; resume or begin the job
    ParquetSink(lake, ...)                      rows -> part files
    Checkpoint(lake, job, run_id, ...)          units (`Unit`: rows + the work they complete)
    SinkTask(sink, checkpoint)                  epochs: files first, then the manifest naming them
    finish_job(lake, checkpoint)                done, then settled
    settle, recover_compactions                 the Ray driver settles for its shards
    lake.put(layout.run_report(run_id), ...)    the run's report

A run reads only what a `JobState` says is done (`media`, `accounts`, `other`, `rows`) and its
clock, snapshot date and sweep windows. So a table format (Delta Lake) could take over commit,
settling and compaction behind these names (a transaction per epoch, a delete-and-append per
supersede, OPTIMIZE for compaction) with its changes confined to `lake/`.
"""
