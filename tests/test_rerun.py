from starbatch.engine.rerun import rerun_targets


def test_targets_are_failed_batches_once_each_and_plan_when_rows_were_skipped(tmp_path):
    failed = tmp_path / "failed.csv"
    failed.write_text(
        "analysis,batch,obj\ngridfit,gridfit-aaaaaaaa-0001,a\ngridfit,gridfit-aaaaaaaa-0001,b\nsnr,snr-bbbbbbbb-0000,a\n"
    )
    skipped = tmp_path / "skipped.csv"
    skipped.write_text("source,line,reason\n")
    assert rerun_targets(failed, skipped) == [
        "results/batches/gridfit-aaaaaaaa-0001.fits",
        "results/batches/snr-bbbbbbbb-0000.fits",
    ]
    skipped.write_text("source,line,reason\nobs.csv,3,file not found\n")
    assert rerun_targets(failed, skipped)[0] == "plan"
    assert rerun_targets(tmp_path / "none.csv", tmp_path / "none2.csv") == []
