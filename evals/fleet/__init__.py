"""The fleet world: a simulated multi-tenant camera fleet with planted faults, built
independently of ``evals.worlds``, and the cutting of its evaluations into incident cases.

``python -m evals.fleet build --store PATH --seed N`` writes the store and its truth file;
``python -m evals.fleet cut --store PATH --out evals/incidents`` cuts the 3NN_fleet_* cases.
"""
