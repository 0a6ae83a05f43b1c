"""Reports: the local HTML report from run dirs (`local`, `html`) and the W&B report builder (`wandb_report`)."""
