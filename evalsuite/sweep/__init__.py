"""``xplus-eval sweep``: many models, each one ``xplus-eval all`` run folder, run by a local, Ray or Slurm
engine, with resume and one leaderboard."""
